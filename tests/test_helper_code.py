"""helper_code.py: the Challenge helper API on the real records and on hand-made headers."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from conftest import cinc_headers

import helper_code as hc
from ecgio.errors import RecordError

HEADER_PLAIN = """R1 3 250 4 10:00:00 01/01/2000
R1.mat 16+24 200/mV 16 10 0 0 0 I
R1.mat 16+24 200/mV 16 -4 0 0 0 AVR
R1.mat 16+24 500(7)/mv 16 3 0 0 0 v2
#Age: 61
#Sex: Female
#Dx: 164889003, 59118001
#Dx: 426783006
"""


def test_lead_set_constants() -> None:
    assert hc.twelve_leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    assert hc.six_leads == hc.twelve_leads[:6]
    assert hc.four_leads == ("I", "II", "III", "V2")
    assert hc.three_leads == ("I", "II", "V2")
    assert hc.two_leads == ("I", "II")
    assert hc.lead_sets == (hc.twelve_leads, hc.six_leads, hc.four_leads, hc.three_leads, hc.two_leads)


def test_number_predicates() -> None:
    assert hc.is_number("1e3") and hc.is_number(" 2 ") and hc.is_number("nan") and hc.is_number(3)
    assert not hc.is_number("abc") and not hc.is_number(None) and not hc.is_number("")
    assert hc.is_integer("12") and hc.is_integer(4.0) and not hc.is_integer("1.5") and not hc.is_integer("x")
    assert hc.is_finite_number("0.25") and not hc.is_finite_number("nan") and not hc.is_finite_number("inf")


def test_sort_leads() -> None:
    assert hc.sort_leads(["V2", "I", "X1", "AVR", "ii"]) == ("I", "II", "aVR", "V2", "X1")
    assert hc.sort_leads(hc.twelve_leads[::-1]) == hc.twelve_leads


def test_find_challenge_files(cinc_dir: Path, tmp_path: Path) -> None:
    headers, recordings = hc.find_challenge_files(str(cinc_dir))
    assert len(headers) == len(recordings) == 25
    assert headers == sorted(headers) and all(
        Path(h).with_suffix(".mat") == Path(r) for h, r in zip(headers, recordings)
    )
    for name in ("A", ".hidden"):
        shutil.copy(cinc_dir / "E07500.hea", tmp_path / f"{name}.hea")
        shutil.copy(cinc_dir / "E07500.mat", tmp_path / f"{name}.mat")
    shutil.copy(cinc_dir / "E07501.hea", tmp_path / "B.hea")  # no .mat: not a record
    (tmp_path / "sub").mkdir()
    assert hc.find_challenge_files(str(tmp_path)) == ([str(tmp_path / "A.hea")], [str(tmp_path / "A.mat")])


@pytest.mark.parametrize("header_file", cinc_headers(), ids=lambda p: p.stem)
def test_real_header_fields(header_file: Path) -> None:
    header = hc.load_header(str(header_file))
    text_lines = header_file.read_text().splitlines()
    assert hc.get_recording_id(header) == header_file.stem
    assert hc.get_num_leads(header) == 12.0 and isinstance(hc.get_num_leads(header), float)
    assert hc.get_frequency(header) == float(text_lines[0].split()[2])
    assert hc.get_num_samples(header) == float(text_lines[0].split()[3])
    assert hc.get_leads(header) == hc.twelve_leads
    assert hc.get_adc_gains(header, hc.twelve_leads).tolist() == [1000.0] * 12  # '1000.0(0)/mV' and '/mv'
    assert hc.get_baselines(header, hc.twelve_leads).tolist() == [0.0] * 12
    dx = next(line for line in text_lines if line.startswith("# Dx:")).split(":", 1)[1]
    assert hc.get_labels(header) == [code.strip() for code in dx.split(",")]
    age = next(line for line in text_lines if line.startswith("# Age:")).split(":", 1)[1].strip()
    assert hc.get_age(header) == float(age) or (math.isnan(hc.get_age(header)) and not hc.is_finite_number(age))
    assert hc.get_sex(header) in ("Male", "Female", "Unknown")


@pytest.mark.parametrize("header_file", cinc_headers()[::6], ids=lambda p: p.stem)
def test_real_recording_and_lead_choice(header_file: Path) -> None:
    header = hc.load_header(str(header_file))
    mat = str(header_file.with_suffix(".mat"))
    recording = hc.load_recording(mat)
    assert recording.shape == (12, hc.get_num_samples(header)) and recording.dtype == np.int16
    chosen = hc.load_recording(mat, header, ["v2", "I", "X"])  # any case; X absent -> zeros
    assert chosen.dtype == np.int16 and chosen.shape == (3, recording.shape[1])
    assert np.array_equal(chosen[0], recording[7]) and np.array_equal(chosen[1], recording[0])
    assert not chosen[2].any()
    assert np.array_equal(hc.load_recording(mat, header, None), recording)


def test_hand_made_header() -> None:
    assert hc.get_recording_id(HEADER_PLAIN) == "R1"
    assert (hc.get_num_leads(HEADER_PLAIN), hc.get_frequency(HEADER_PLAIN), hc.get_num_samples(HEADER_PLAIN)) == (
        3.0,
        250.0,
        4.0,
    )
    assert hc.get_leads(HEADER_PLAIN) == ("I", "aVR", "V2")
    assert hc.get_adc_gains(HEADER_PLAIN, ["V2", "aVR", "I", "II"]).tolist() == [500.0, 200.0, 200.0, 0.0]
    # Baseline: the value in parentheses when written (WFDB), else the ADC zero.
    assert hc.get_baselines(HEADER_PLAIN, ["I", "AVR", "V2"]).tolist() == [10.0, -4.0, 7.0]
    assert hc.get_age(HEADER_PLAIN) == 61.0 and hc.get_sex(HEADER_PLAIN) == "Female"
    assert hc.get_labels(HEADER_PLAIN) == ["164889003", "59118001", "426783006"]


def test_comment_spellings_and_unknown_values() -> None:
    spaced = HEADER_PLAIN.replace("#Age: 61", "# Age: Unknown").replace("#Sex", "# Sex").replace("#Dx", "# Dx")
    assert math.isnan(hc.get_age(spaced)) and hc.get_sex(spaced) == "Female"
    assert hc.get_labels(spaced) == hc.get_labels(HEADER_PLAIN)
    assert math.isnan(hc.get_age(HEADER_PLAIN.replace("61", "NaN")))
    bare = "\n".join(line for line in HEADER_PLAIN.splitlines() if not line.startswith("#"))
    assert hc.get_age(bare) is None and hc.get_sex(bare) is None and hc.get_labels(bare) == []
    crlf = HEADER_PLAIN.replace("\n", "\r\n")
    assert hc.get_leads(crlf) == ("I", "aVR", "V2") and hc.get_labels(crlf) == hc.get_labels(HEADER_PLAIN)


def test_unreadable_line_zero_gives_none() -> None:
    broken = HEADER_PLAIN.replace("R1 3 250 4", "R1 3 fast 4")
    assert hc.get_frequency(broken) is None and hc.get_num_samples(broken) == 4.0
    assert hc.get_num_samples("R2 12") is None


def test_header_declaring_fewer_lines_reads_only_signal_lines() -> None:
    # 4 leads declared, 3 listed: comment lines must never be taken for lead names.
    header = HEADER_PLAIN.replace("R1 3 250", "R1 4 250")
    assert hc.get_leads(header) == ("I", "aVR", "V2")


def test_load_recording_errors_name_the_file(cinc_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="missing.mat"):
        hc.load_recording(str(tmp_path / "missing.mat"))
    scipy.io.savemat(str(tmp_path / "other.mat"), {"data": np.zeros((2, 3), np.int16)}, format="4")
    with pytest.raises(RecordError, match=r"other\.mat.*'val'"):
        hc.load_recording(str(tmp_path / "other.mat"))
    assert hc.load_recording(str(tmp_path / "other.mat"), key="data").shape == (2, 3)
    truncated = tmp_path / "cut.mat"
    truncated.write_bytes((cinc_dir / "E07500.mat").read_bytes()[:1000])
    with pytest.raises(RecordError, match=r"cut\.mat"):
        hc.load_recording(str(truncated))


def test_save_outputs_bytes(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    hc.save_outputs(
        str(path), "A0001", ["164889003", 426783006], np.array([True, False]), np.array([0.25, 1.0], dtype=np.float64)
    )
    assert path.read_bytes() == b"#A0001\n164889003,426783006\nTrue,False\n0.25,1.0\n"
    hc.save_outputs(str(path), "A0002", ["x"], [1], [np.float32(0.1)])
    assert path.read_bytes() == b"#A0002\nx\n1\n" + str(np.float32(0.1)).encode() + b"\n"
    hc.save_outputs(str(path), "A0003", [], [], [])
    assert path.read_bytes() == b"#A0003\n\n\n\n"


def test_outputs_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "out.csv")
    classes = ["164889003", "733534002|164909002", "426783006"]
    hc.save_outputs(path, "JS20000", classes, [1, 0, 1], [0.9, float("nan"), 0.3])
    recording_id, loaded_classes, labels, probabilities = hc.load_outputs(path)
    assert recording_id == "JS20000" and loaded_classes == tuple(classes) and labels == ("1", "0", "1")
    assert probabilities[0] == 0.9 and math.isnan(probabilities[1]) and probabilities[2] == 0.3
    hc.save_outputs(path, "E1", [], [], [])
    assert hc.load_outputs(path) == ("E1", (), (), ())
    Path(path).write_text("#E2\na,b\n")  # short file: no crash
    assert hc.load_outputs(path) == ("E2", ("a", "b"), (), ())


SAVE_WITH_FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
sys.path.insert(0, sys.argv[1])
import helper_code
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))  # the disk fills after 64 bytes
try:
    helper_code.save_outputs(sys.argv[2], "A0001", [str(10**8 + i) for i in range(40)], [0] * 40, [0.5] * 40)
except OSError as error:
    print("OSError", error.errno)
"""


def test_save_outputs_is_atomic_on_a_full_disk(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "A0001.csv"
    path.write_text("#A0001\nold\n1\n0.5\n")
    root = str(Path(__file__).resolve().parents[1])
    result = subprocess.run(
        [sys.executable, "-c", SAVE_WITH_FULL_DISK, root, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OSError")  # the caller hears of it
    assert path.read_text() == "#A0001\nold\n1\n0.5\n"  # the old file intact, not truncated
    assert [p.name for p in tmp_path.iterdir()] == ["A0001.csv"]  # no temporary left behind


def test_load_recording_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    import os
    import signal

    def hung(*_args: object) -> None:
        raise TimeoutError("load_recording blocked on a FIFO or a device")

    os.mkfifo(tmp_path / "fifo.mat")
    (tmp_path / "link.mat").symlink_to("/dev/zero")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)  # on main this read blocks forever
    try:
        with pytest.raises(RecordError, match="not a regular file"):
            hc.load_recording(str(tmp_path / "fifo.mat"))
        with pytest.raises(RecordError, match="links outside|not a regular file"):
            hc.load_recording(str(tmp_path / "link.mat"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
