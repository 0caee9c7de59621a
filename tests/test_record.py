"""ecgio: headers and the record reader on every real record, against wfdb, and on hand-made cases."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import cinc_headers

from ecgio import RecordError, find_records, load_raw, parse_header, read_header, read_record, to_millivolts
from ecgio.header import parse_gain
from ecgio.leads import TWELVE_LEADS

HAND_MADE = """X1 2 360 3
X1.dat 212 200/mV 12 1024 0 0 0 I
X1.dat 212 2000(-50)/uV 12 0 0 0 0 AVL
"""


def _comment(path: Path, key: str) -> str:
    line = next(line for line in path.read_text().splitlines() if line.replace(" ", "").startswith(f"#{key}:"))
    return line.split(":", 1)[1].strip()


@pytest.mark.parametrize("header_file", cinc_headers(), ids=lambda p: p.stem)
def test_cinc_header_and_signal_match_wfdb(header_file: Path) -> None:
    header = read_header(header_file)
    assert header.record_name == header_file.stem and header.num_leads == 12
    assert header.leads == TWELVE_LEADS and header.fs == 500.0
    assert header.gains == (1000.0,) * 12 and header.baselines == (0.0,) * 12  # '1000.0(0)/mV' and '/mv'
    assert header.labels == tuple(code.strip() for code in _comment(header_file, "Dx").split(","))
    assert header.age == float(_comment(header_file, "Age"))
    assert header.sex == _comment(header_file, "Sex")
    record = read_record(header_file)
    assert record.signal.dtype == np.float32 and record.signal.shape == (12, header.num_samples)
    reference = wfdb.rdrecord(str(header_file.with_suffix("")))
    assert reference.sig_name == list(TWELVE_LEADS)
    np.testing.assert_allclose(record.signal, reference.p_signal.T, atol=1e-6)
    assert record.labels == header.labels and record.fs == 500.0 and record.duration == header.num_samples / 500


def test_every_ptbxl_record_matches_wfdb(ptbxl_dir: Path) -> None:
    headers = sorted(ptbxl_dir.rglob("*.hea"))
    assert len(headers) > 300
    for header_file in headers:
        header = read_header(header_file)
        assert header.leads == TWELVE_LEADS, header_file  # AVR/AVL/AVF in the file, canonical here
        assert header.fs in (100.0, 500.0) and header.num_samples == header.fs * 10
        assert header.gains == (1000.0,) * 12 and header.baselines == (0.0,) * 12
        assert math.isnan(header.age) and header.sex is None and header.labels == ()
    for header_file in headers[::8]:  # signals: every 8th record (reading all 706 takes too long)
        record = read_record(header_file)
        reference = wfdb.rdrecord(str(header_file.with_suffix("")))
        assert [name.upper() for name in reference.sig_name] == [name.upper() for name in record.leads]
        np.testing.assert_allclose(record.signal, reference.p_signal.T, atol=1e-6, err_msg=str(header_file))


def test_gain_spellings() -> None:
    assert parse_gain("1000/mV") == (1000.0, None, "mV")
    assert parse_gain("1000.0(0)/mV") == (1000.0, 0.0, "mV")
    assert parse_gain("1000.0(0)/mv") == (1000.0, 0.0, "mv")
    assert parse_gain("200(-5)") == (200.0, -5.0, "")


def test_hand_made_header_units_and_baselines() -> None:
    header = parse_header(HAND_MADE, "X1.hea")
    assert header.leads == ("I", "aVL") and header.fs == 360.0 and header.num_samples == 3
    assert header.gains == (200.0, 2.0e6)  # 2000 ADC units per uV = 2,000,000 per mV
    assert header.baselines == (1024.0, -50.0)  # ADC zero when no baseline is written, else the baseline
    raw = np.array([[1024, 1224, 824], [-50, -48, -52]], dtype=np.int16)
    mv = to_millivolts(raw, header, ("I", "II", "aVL"))
    np.testing.assert_allclose(mv, [[0, 1, -1], [0, 0, 0], [0, 1e-6, -1e-6]], rtol=1e-6, atol=1e-12)
    assert mv.dtype == np.float32


def test_both_comment_spellings_and_unknowns() -> None:
    base = HAND_MADE + "{p}Age: {age}\n{p}Sex: {sex}\n{p}Dx: 164889003,59118001\n"
    for prefix in ("#", "# "):
        header = parse_header(base.format(p=prefix, age="74", sex="Male"))
        assert header.age == 74.0 and header.sex == "Male" and header.labels == ("164889003", "59118001")
    for age in ("NaN", "Unknown", ""):
        assert math.isnan(parse_header(base.format(p="#", age=age, sex="Unknown")).age)
    assert parse_header(base.format(p="#", age="1", sex="Unknown")).sex is None
    assert parse_header(base.format(p="# ", age="1", sex="F")).sex == "Female"


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda t: t.replace("X1 2 360", "X1 3 360"), "declares 3 leads but lists 2"),
        (lambda t: t.replace("X1 2 360", "X1 2 fast"), "sampling frequency is not a number"),
        (lambda t: t.replace("X1 2 360", "X1 two 360"), "number of leads is not a number"),
        (lambda t: "# only comments\n", "header is empty"),
    ],
)
def test_bad_headers_name_the_file(change, problem: str) -> None:
    with pytest.raises(RecordError, match=problem) as error:
        parse_header(change(HAND_MADE), "somewhere/X1.hea")
    assert str(error.value).startswith("somewhere/X1.hea: ")


def test_bad_signal_files_name_the_file(cinc_dir: Path, tmp_path: Path) -> None:
    shutil.copy(cinc_dir / "E07500.hea", tmp_path / "E07500.hea")
    with pytest.raises(RecordError, match=r"E07500\.mat: signal file is missing"):
        read_record(tmp_path / "E07500.hea")
    (tmp_path / "E07500.mat").write_bytes((cinc_dir / "E07500.mat").read_bytes()[:5000])
    with pytest.raises(RecordError, match=r"E07500\.mat"):
        read_record(tmp_path / "E07500")
    shutil.copy(cinc_dir / "E07500.mat", tmp_path / "E07500.mat")
    text = (cinc_dir / "E07500.hea").read_text().replace("E07500 12 500 5000", "E07500 12 500 4000")
    (tmp_path / "E07500.hea").write_text(text)
    with pytest.raises(RecordError, match="5000 samples, header declares 4000"):
        load_raw(tmp_path / "E07500.hea")


def test_find_records_recurses_and_skips(cinc_dir: Path, tmp_path: Path) -> None:
    for folder, name in (("g1", "E07500"), ("g2/deep", "E07501"), (".hidden", "E07502")):
        (tmp_path / folder).mkdir(parents=True)
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc_dir / f"{name}{suffix}", tmp_path / folder / f"{name}{suffix}")
    shutil.copy(cinc_dir / "E07503.hea", tmp_path / "E07503.hea")  # header without signal
    found = find_records(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["g1/E07500.hea", "g2/deep/E07501.hea"]
    assert find_records(tmp_path, recursive=False) == []


def test_find_records_can_include_headers_without_signal(cinc_dir: Path, tmp_path: Path) -> None:
    shutil.copy(cinc_dir / "E07503.hea", tmp_path / "E07503.hea")
    (tmp_path / "dir.hea").mkdir()  # a folder named like a header is not one
    assert find_records(tmp_path) == []
    assert find_records(tmp_path, require_signal=False) == [tmp_path / "E07503.hea"]


def test_unnamed_leads_are_an_error_not_a_guess(cinc_dir: Path, tmp_path: Path) -> None:
    lines = (cinc_dir / "E07500.hea").read_text().splitlines()
    lines[3] = " ".join(lines[3].split()[:8])  # the third lead line loses its description
    (tmp_path / "E07500.hea").write_text("\n".join(lines) + "\n")
    shutil.copy(cinc_dir / "E07500.mat", tmp_path / "E07500.mat")
    assert read_header(tmp_path / "E07500.hea").leads[2] == ""
    with pytest.raises(RecordError, match="signal line 3 names no lead"):
        read_record(tmp_path / "E07500.hea")
