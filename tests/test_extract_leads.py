"""extract_leads_wfdb.py: reduced-lead copies that the helper, ecgio and wfdb all read back."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

import helper_code as hc
from ecgio import read_record

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("extract_leads_wfdb", ROOT / "extract_leads_wfdb.py")
extract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(extract)

LAYOUT = {"g1": ["E07500", "HR06000"], "g2/sub": ["JS20000"], ".": ["E07501"]}


def wfdb_checksum(samples: np.ndarray) -> int:
    """WFDB's 16-bit checksum of one lead, as a signed number (the Challenge headers write it so)."""
    value = int(np.sum(samples.astype(np.int64))) % 65536
    return value - 65536 if value >= 32768 else value


@pytest.fixture()
def data_tree(cinc_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "in"
    for folder, names in LAYOUT.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            for suffix in (".hea", ".mat"):
                shutil.copy(cinc_dir / f"{name}{suffix}", root / folder / f"{name}{suffix}")
    return root


@pytest.mark.parametrize("leads", [["I", "II", "V2"], ["II", "avr", "I", "III", "aVL", "aVF"]])
def test_round_trip(data_tree: Path, tmp_path: Path, cinc_dir: Path, leads: list[str]) -> None:
    out = tmp_path / "out"
    assert extract.main(["-i", str(data_tree), "-o", str(out), "-l", *leads, "-q"]) == 0
    canonical = tuple(hc.sort_leads([lead])[0] for lead in leads)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    expected = sorted(
        f"{folder}/{name}{suffix}".removeprefix("./")
        for folder, names in LAYOUT.items()
        for name in names
        for suffix in (".hea", ".mat")
    )
    assert written == expected  # subfolder layout kept
    for header_file in out.rglob("*.hea"):
        original_header = (cinc_dir / header_file.name).read_text()
        header = hc.load_header(str(header_file))
        full = hc.load_recording(str(cinc_dir / f"{header_file.stem}.mat"))
        rows = [hc.twelve_leads.index(lead) for lead in canonical]
        # The official helper's view: lead names, count, raw values in the input dtype, gains.
        recording = hc.load_recording(str(header_file.with_suffix(".mat")))
        assert recording.dtype == np.int16 and np.array_equal(recording, full[rows])
        assert hc.get_leads(header) == canonical and hc.get_num_leads(header) == len(leads)
        assert header.splitlines()[0].split()[1:] == [str(len(leads))] + original_header.splitlines()[0].split()[2:]
        assert hc.get_labels(header) == hc.get_labels(original_header) and hc.get_age(header) == hc.get_age(
            original_header
        )
        assert [line for line in header.splitlines() if line.startswith("#")] == [
            line for line in original_header.splitlines() if line.startswith("#")
        ]
        # Lead lines keep their fields; each checksum still matches its lead's samples.
        for line, row in zip(header.splitlines()[1 : len(leads) + 1], recording):
            tokens = line.split()
            original = next(o for o in original_header.splitlines()[1:13] if o.split()[-1] == tokens[-1])
            assert tokens[2:] == original.split()[2:] and tokens[1] == "16x1+24"
            assert int(tokens[6]) == wfdb_checksum(row)
        # wfdb and ecgio read the copy, in mV, equal to the original leads.
        reference = wfdb.rdrecord(str(header_file.with_suffix("")))
        assert reference.sig_name == list(canonical)
        np.testing.assert_allclose(reference.p_signal.T, full[rows] / 1000.0, atol=1e-9)
        record = read_record(header_file)
        np.testing.assert_allclose(
            record.signal,
            read_record(cinc_dir / header_file.name).signal[[hc.twelve_leads.index(lead) for lead in record.leads]],
            atol=1e-6,
        )


def test_missing_lead_is_logged_and_others_go_on(
    data_tree: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    bad = data_tree / "g1" / "HR06000.hea"
    bad.write_text(bad.read_text().replace(" V2\n", " V2x\n"))
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR):
        status = extract.main(["-i", str(data_tree), "-o", str(out), "-l", "I", "II", "V2", "-q"])
    assert status == 1
    assert any("HR06000.hea" in message and "lacks lead(s) V2" in message for message in caplog.messages)
    assert not (out / "g1" / "HR06000.hea").exists() and not (out / "g1" / "HR06000.mat").exists()
    assert len(list(out.rglob("*.hea"))) == 3
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert "3 of 4 records" in summary and "1 failed" in summary


def test_other_key_and_damaged_mat(data_tree: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = data_tree / "E07501.mat"
    values = scipy.io.loadmat(str(source))["val"]
    scipy.io.savemat(str(source), {"ecg": values}, format="4")  # input under another key
    (data_tree / "g1" / "E07500.mat").write_bytes(b"MATLAB? no")  # damaged: logged, skipped
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR):
        status = extract.main(["-i", str(data_tree), "-o", str(out), "-l", "I", "II", "-k", "ecg", "-q"])
    assert status == 1
    assert any("E07500.mat" in message for message in caplog.messages)
    copy = hc.load_recording(str(out / "E07501.mat"))  # written under 'val'
    assert np.array_equal(copy, values[:2])
    assert np.allclose(wfdb.rdrecord(str(out / "E07501")).p_signal.T, values[:2] / 1000.0)


def test_command_line(data_tree: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "extract_leads_wfdb.py"),
            "-i",
            str(data_tree),
            "-o",
            str(tmp_path / "out"),
            "-l",
            "I",
            "II",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("Extracted leads I,II from 4 of 4 records")
    missing = subprocess.run(
        [sys.executable, str(ROOT / "extract_leads_wfdb.py"), "-i", str(data_tree)], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "usage" in missing.stderr


def test_empty_folder_and_unknown_lead_are_errors(data_tree: Path, tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    script = str(ROOT / "extract_leads_wfdb.py")
    empty = subprocess.run(
        [sys.executable, script, "-i", str(tmp_path / "empty"), "-o", str(tmp_path / "o1"), "-l", "I"],
        capture_output=True,
        text=True,
    )
    assert empty.returncode == 2 and f"error: {tmp_path / 'empty'}: no records" in empty.stderr
    unknown = subprocess.run(
        [sys.executable, script, "-i", str(data_tree), "-o", str(tmp_path / "o2"), "-l", "I", "FOO", "-q"],
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 2 and "error: unknown lead name(s) FOO" in unknown.stderr
    assert not (tmp_path / "o2").exists()  # rejected before any record is written


def test_header_naming_a_file_outside_is_skipped(data_tree: Path, tmp_path: Path, caplog) -> None:
    bad = data_tree / "g1" / "E07500.hea"
    bad.write_text(bad.read_text().replace("E07500.mat ", "../../etc/passwd ", 1))
    with caplog.at_level(logging.ERROR):
        status = extract.main(["-i", str(data_tree), "-o", str(tmp_path / "out"), "-l", "I", "II", "-q"])
    assert status == 1
    assert any("passwd" in message and "plain name" in message for message in caplog.messages)
    assert len(list((tmp_path / "out").rglob("*.hea"))) == 3


@pytest.mark.parametrize("out", [".", "g1", "g2/sub/new"])
def test_output_folder_overlapping_the_input_is_refused(data_tree: Path, out: str) -> None:
    before = {path: path.read_bytes() for path in data_tree.rglob("*") if path.is_file()}
    script = str(ROOT / "extract_leads_wfdb.py")
    same = subprocess.run(
        [sys.executable, script, "-i", str(data_tree), "-o", str(data_tree / out), "-l", "I", "II", "-q"],
        capture_output=True,
        text=True,
    )
    assert same.returncode == 2, same.stderr
    assert same.stderr.strip().splitlines() == [
        f"error: the output folder {data_tree / out} is the input folder {data_tree} or inside it;"
        " choose a folder outside it (the originals would be overwritten or read back)"
    ]
    assert {path: path.read_bytes() for path in data_tree.rglob("*") if path.is_file()} == before


def test_input_folder_inside_the_output_is_refused(data_tree: Path) -> None:
    before = {path: path.read_bytes() for path in data_tree.rglob("*") if path.is_file()}
    status = extract.main(["-i", str(data_tree / "g1"), "-o", str(data_tree), "-l", "I", "-q"])
    assert status == 2
    assert {path: path.read_bytes() for path in data_tree.rglob("*") if path.is_file()} == before
