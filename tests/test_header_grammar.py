"""One header grammar: ecgio.header, helper_code and wfdb read every signal line alike.

Signal-line variants of the WFDB header specification (with and without checksum, block size and
description; baseline in the gain field; units mV/uV/V/mv; formats 16, 212, 16+24, 16x1+24),
repeated comments, and agreement of helper_code, ecgio and ``wfdb.rdheader`` on the real headers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import CINC_SAMPLE, PTBXL_SAMPLE, SHARED_DATA

import helper_code as hc
from ecgio import RecordError, parse_header, to_millivolts

# line -> (format, samples per frame, byte offset, gain, baseline, units, adc res, adc zero, initial,
#          checksum, block size, description)
VARIANTS = {
    "r.dat 16": (16, None, None, None, None, None, None, None, None, None, None, None),
    "r.dat 212 200": (212, None, None, 200.0, None, None, None, None, None, None, None, None),
    "r.dat 16 1000/mV 16 0 0 0 0 I": (16, None, None, 1000.0, None, "mV", 16, 0, 0, 0, 0, "I"),
    "r.mat 16+24 1000.0(0)/mV 16 0 -34 -215 0 II": (16, None, 24, 1000.0, 0, "mV", 16, 0, -34, -215, 0, "II"),
    "r.mat 16x1+24 1000.0(0)/mv 16 0 -34 -215 0 V1": (16, 1, 24, 1000.0, 0, "mv", 16, 0, -34, -215, 0, "V1"),
    "r.mat 16 1000/mV 16 0 0 0 I": (16, None, None, 1000.0, None, "mV", 16, 0, 0, 0, None, "I"),
    "r.mat 16 1000/mV 16 0 5 aVR": (16, None, None, 1000.0, None, "mV", 16, 0, 5, None, None, "aVR"),
    "r.dat 16 1716(6)/mV 0 0 -120 -32198 0 i": (16, None, None, 1716.0, 6, "mV", 0, 0, -120, -32198, 0, "i"),
    "r.dat 212 2000(-50)/uV 12 0 0 0 0 AVL": (212, None, None, 2000.0, -50, "uV", 12, 0, 0, 0, 0, "AVL"),
    "r.dat 16 0.5/V 12 1024 0 0 0 lead V5": (16, None, None, 0.5, None, "V", 12, 1024, 0, 0, 0, "lead V5"),
    "r.dat 16 200 12 0 0 0 0": (16, None, None, 200.0, None, None, 12, 0, 0, 0, 0, None),
    "r.dat  16\t1e3/mV  16 0  0 0 0   V6  ": (16, None, None, 1000.0, None, "mV", 16, 0, 0, 0, 0, "V6"),
    "r.dat 16 1000/mV 12 0 0 0 0 3 lead": (16, None, None, 1000.0, None, "mV", 12, 0, 0, 0, 0, "3 lead"),
}


@pytest.mark.parametrize("line", list(VARIANTS), ids=range(len(VARIANTS)))
def test_signal_line_variants(line: str) -> None:
    from ecgio.header import parse_signal_line

    signal = parse_signal_line(line)
    fields = (
        signal.format,
        signal.samples_per_frame,
        signal.byte_offset,
        signal.gain,
        signal.baseline,
        signal.units,
        signal.adc_resolution,
        signal.adc_zero,
        signal.initial_value,
        signal.checksum,
        signal.block_size,
        signal.description,
    )
    assert fields == VARIANTS[line]
    assert signal.file_name == line.split()[0]


@pytest.mark.parametrize("line", list(VARIANTS), ids=range(len(VARIANTS)))
def test_variants_agree_with_wfdb_and_helper(line: str, tmp_path: Path) -> None:
    text = f"r 1 500 1000\n{line}\n"
    (tmp_path / "r.hea").write_text(text)
    reference = wfdb.rdheader(str(tmp_path / "r"))
    header = parse_header(text, "r.hea")
    scale = {"mv": 1.0, "uv": 1e-3, "v": 1e3}[(reference.units[0] or "mV").lower()]
    assert header.gains[0] == pytest.approx(reference.adc_gain[0] / scale)
    assert header.baselines[0] == reference.baseline[0]
    assert header.leads[0].upper() == (reference.sig_name[0] or "").upper()
    assert hc.get_leads(text) == header.leads
    assert hc.get_adc_gains(text, header.leads).tolist() == list(header.gains)
    assert hc.get_baselines(text, header.leads).tolist() == list(header.baselines)


def test_units_scale_to_millivolts() -> None:
    text = "r 4 500 2\nr.dat 16 1000/mV 16 0 0 0 0 I\nr.dat 16 1/uV 16 0 0 0 0 II\nr.dat 16 1000/mv 16 0 0 0 0 V1\n"
    text += "r.dat 16 2/V 16 0 0 0 0 V2\n"
    header = parse_header(text)
    assert header.gains == (1000.0, 1000.0, 1000.0, 0.002)
    mv = to_millivolts(np.array([[1000, 0]] * 4, dtype=np.int16), header, ("I", "II", "V1", "V2"))
    np.testing.assert_allclose(mv[:, 0], [1.0, 1.0, 1.0, 500_000.0])


def test_eight_field_line_names_its_lead_and_scales() -> None:
    """On main ecgio called this lead 'lead1' and to_millivolts returned zeros without a word."""
    text = "r 2 500 3\nr.mat 16 1000/mV 16 0 0 0 I\nr.mat 16 500/mV 16 0 0 0 II\n"
    header = parse_header(text)
    assert header.leads == ("I", "II") == hc.get_leads(text)
    mv = to_millivolts(np.array([[1000, 0, -1000], [500, 0, 0]], dtype=np.int16), header, ("I", "II"))
    np.testing.assert_allclose(mv, [[1, 0, -1], [1, 0, 0]])


def test_no_wanted_lead_is_an_error_not_silent_zeros() -> None:
    header = parse_header("r 1 500 3\nr.mat 16 1000/mV\n")
    assert header.leads == ("",)
    with pytest.raises(RecordError, match="none of the leads I, II"):
        to_millivolts(np.zeros((1, 3), np.int16), header, ("I", "II"))


def test_unreadable_signal_line_is_an_error() -> None:
    with pytest.raises(RecordError, match="unreadable signal line"):
        parse_header("r 1 500 3\nr.mat sixteen 1000/mV 16 0 0 0 I\n", "x/r.hea")


def test_repeated_comments_last_one_counts_in_both_apis() -> None:
    text = "r 1 500 3\nr.mat 16 1000/mV 16 0 0 0 0 I\n#Age: 40\n#Sex: Male\n# Age: 55\n#Sex: Female\n#Dx: 1,2\n#Dx: 3\n"
    header = parse_header(text)
    assert header.age == 55.0 == hc.get_age(text)
    assert header.sex == "Female" == hc.get_sex(text)
    assert header.labels == ("1", "2", "3") and hc.get_labels(text) == ["1", "2", "3"]
    assert header.comments["age"] == "55"


def _real_headers() -> list[Path]:
    found = []
    for folder in (CINC_SAMPLE, PTBXL_SAMPLE, SHARED_DATA / "ludb"):
        if folder.is_dir():
            found.extend(sorted(folder.rglob("*.hea")))
    return found


def _assert_same(header_file: Path) -> None:
    """helper_code and ecgio read the same fields from a header."""
    text = header_file.read_text()
    header = parse_header(text, str(header_file))
    assert hc.get_leads(text) == header.leads, header_file
    assert hc.get_adc_gains(text, header.leads).tolist() == list(header.gains), header_file
    assert hc.get_baselines(text, header.leads).tolist() == list(header.baselines), header_file
    assert hc.get_frequency(text) == header.fs and hc.get_num_samples(text) == header.num_samples
    assert hc.get_num_leads(text) == header.num_leads and hc.get_recording_id(text) == header.record_name
    age = hc.get_age(text)
    assert (age is None and math.isnan(header.age)) or age == header.age or (math.isnan(age) and math.isnan(header.age))
    assert hc.get_labels(text) == list(header.labels)


def _assert_matches_wfdb(header_file: Path) -> None:
    header = parse_header(header_file.read_text(), str(header_file))
    reference = wfdb.rdheader(str(header_file.with_suffix("")))
    assert [lead.upper() for lead in header.leads] == [name.upper() for name in reference.sig_name], header_file
    assert list(header.gains) == [float(g) for g in reference.adc_gain] and all(
        u.lower() == "mv" for u in reference.units
    )
    assert list(header.baselines) == [float(b) for b in reference.baseline], header_file
    assert header.fs == reference.fs and header.num_samples == reference.sig_len, header_file


def test_every_real_header_helper_and_ecgio_agree() -> None:
    headers = _real_headers()
    if not headers:
        pytest.skip(f"real data not found under {SHARED_DATA}")
    for header_file in headers:
        _assert_same(header_file)
    assert len(headers) >= 25


def test_cinc_and_ptbxl_headers_match_wfdb(cinc_dir: Path, ptbxl_dir: Path) -> None:
    cinc = sorted(cinc_dir.glob("*.hea"))
    ptbxl = sorted(ptbxl_dir.rglob("*.hea"))[::10]
    assert len(cinc) == 25 and len(ptbxl) > 60
    for header_file in cinc + ptbxl:
        _assert_matches_wfdb(header_file)
