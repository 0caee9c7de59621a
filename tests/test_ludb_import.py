"""LUDB importer (ludb.csv diagnoses -> Challenge-format records), checked on the real records of ../shared/data/ludb."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import ROOT, SHARED_DATA

import helper_code
from ecgdata import ludb_challenge
from ecgdata.index import build_index
from ecgdata.ludb import paced_records
from ecgio import read_header, read_record
from ecgio.leads import TWELVE_LEADS
from ecgscore.classes import scored_classes
from ecgtrain.labels import ANNOTATED

LUDB = SHARED_DATA / "ludb"
MAPPING_CSV = ROOT / "ecgdata" / "ludb_to_snomed.csv"
#: 1: sinus bradycardia, left axis deviation, LVH; 7: atrial extrasystole; 8: AF with ventricular pacing;
#: 35: typical atrial flutter; 83: AF with ventricular couplets; 132: irregular sinus rhythm with atrial bigeminy.
HANDFUL = (1, 7, 8, 35, 83, 132)
SCORED_CODES = frozenset().union(*scored_classes())


@pytest.fixture(scope="module")
def ludb_root() -> Path:
    if not (LUDB / "ludb.csv").is_file():
        pytest.skip(f"real data not found at {LUDB} (the ../shared folder beside the repository is absent)")
    return LUDB


@pytest.fixture(scope="module")
def converted(ludb_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ludb-challenge")
    summary = ludb_challenge.convert(ludb_root, out, progress=False, numbers=HANDFUL)
    assert (summary.written, summary.skipped, summary.failed) == (len(HANDFUL), 0, 0), summary.errors
    return out


def _table_rows() -> list[dict[str, str]]:
    """The shipped mapping, read independently of the importer."""
    lines = [line for line in MAPPING_CSV.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines))


def _ludb_statements(ludb_root: Path) -> dict[tuple[str, str], int]:
    """Every distinct (column, statement) of ludb.csv with the number of records carrying it."""
    found: dict[tuple[str, str], int] = {}
    with (ludb_root / "ludb.csv").open(newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            for column, cell in row.items():
                if column in {"ID", "Sex", "Age"}:
                    continue
                for line in (cell or "").split("\n"):
                    if line.strip():
                        key = (column, line.strip())
                        found[key] = found.get(key, 0) + 1
    return found


def _copy_ludb(ludb_root: Path, out: Path, numbers: tuple[int, ...]) -> Path:
    """A LUDB folder with only ``numbers`` (signal files and their ludb.csv rows), to damage freely."""
    (out / "data").mkdir(parents=True)
    for number in numbers:
        for suffix in (".hea", ".dat"):
            shutil.copy2(ludb_root / "data" / f"{number}{suffix}", out / "data" / f"{number}{suffix}")
    with (ludb_root / "ludb.csv").open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        rows = [row for row in reader if int(row["ID"]) in numbers]
        fields = reader.fieldnames
    with (out / "ludb.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return out


# --------------------------------------------------------------------------- the mapping table


def test_mapping_has_a_row_for_every_statement(ludb_root):
    rows = _table_rows()
    in_table = {(row["column"], row["statement"]) for row in rows}
    statements = _ludb_statements(ludb_root)
    assert len(statements) == 83
    assert sorted(set(statements) - in_table) == []
    # and no row for a statement ludb.csv does not have (a typo would silently never match)
    assert sorted(in_table - set(statements)) == []


def test_mapping_rows_are_consistent():
    for row in _table_rows():
        code, note = row["snomed_code"], row["note"]
        assert note, row
        if not code:
            assert note.startswith("left out:") and row["scored"] == "no" and not row["abbreviation"], row
            continue
        assert code.isdigit() and row["abbreviation"], row
        # scored exactly when weights.csv lists the code, and the source column says where the code comes from
        assert (row["scored"] == "yes") == (code in SCORED_CODES), row
        assert row["code_source"] == ("weights.csv" if code in SCORED_CODES else "dx_mapping_unscored.csv"), row


def test_a_statement_is_either_mapped_or_left_out():
    by_statement: dict[tuple[str, str], set[bool]] = {}
    for row in _table_rows():
        by_statement.setdefault((row["column"], row["statement"]), set()).add(bool(row["snomed_code"]))
    assert [key for key, kinds in by_statement.items() if len(kinds) > 1] == []
    mapping = ludb_challenge.load_mapping()
    assert len(mapping.codes) + len(mapping.left_out) == len(by_statement)


def test_training_knows_which_classes_ludb_annotates():
    scored_in_table = {row["snomed_code"] for row in _table_rows() if row["scored"] == "yes"}
    assert ANNOTATED["LUDB"] == scored_in_table


def test_bad_mapping_tables_are_refused(tmp_path):
    header = "column,statement,snomed_code,abbreviation,scored,code_source,note\n"
    both = tmp_path / "both.csv"
    both.write_text(
        header + "Rhythms,Sinus rhythm,426783006,NSR,yes,weights.csv,x\nRhythms,Sinus rhythm,,,no,,left out: y\n"
    )
    with pytest.raises(ValueError, match="both mapped and left out"):
        ludb_challenge.load_mapping(both)
    bad_code = tmp_path / "code.csv"
    bad_code.write_text(header + "Rhythms,Sinus rhythm,NSR,NSR,yes,weights.csv,x\n")
    with pytest.raises(ValueError, match=r"code\.csv.*not a number"):
        ludb_challenge.load_mapping(bad_code)


# --------------------------------------------------------------------------- labels of the real records


def test_labels_of_every_real_record(ludb_root):
    rows = ludb_challenge.read_table(ludb_root)
    mapping = ludb_challenge.load_mapping()
    labels = {row.number: ludb_challenge.record_labels(row, mapping) for row in rows}
    assert len(rows) == 200
    assert all(not unknown for _, _, unknown in labels.values())
    with_code = {code: {n for n, (codes, _, _) in labels.items() if code in codes} for code in SCORED_CODES}
    # pacing rhythm exactly on the records whose 'Cardiac pacing' cell is filled
    assert with_code["10370003"] == set(paced_records(ludb_root)) and len(with_code["10370003"]) == 10
    assert len(with_code["164889003"]) == 15 and 8 in with_code["164889003"]  # atrial fibrillation
    assert with_code["164890007"] == {35, 52, 103}  # 'Atrial flutter, typical'
    assert len(with_code["39732003"]) == 66 and len(with_code["47665007"]) == 3  # axis deviations
    # every record has a rhythm class
    rhythm = {"426783006", "426177001", "427084000", "427393009", "164889003", "164890007"}
    assert all(rhythm & set(codes) for codes, _, _ in labels.values())


def test_record_1_gets_exactly_the_mapped_codes(converted):
    # Sinus bradycardia; left axis deviation; Left ventricular overload + hypertrophy; repolarisation (posterior wall)
    header = read_header(converted / "LU00001.hea")
    assert header.labels == ("426177001", "39732003", "370365005", "164873001", "428750005")
    assert header.age == 51 and header.sex == "Female"


def test_pacing_fibrillation_flutter_and_extrasystoles_map(converted):
    labels = {number: set(read_header(converted / f"LU{number:05d}.hea").labels) for number in HANDFUL}
    assert {"164889003", "10370003", "251266004"} <= labels[8]  # AF, pacing rhythm, ventricular pacing pattern
    assert "164890007" in labels[35] and "164889003" not in labels[35]
    assert "284470004" in labels[7]  # atrial extrasystole -> PAC
    assert {"164889003", "427172004", "251182009"} <= labels[83]  # AF, PVC, ventricular couplet
    assert {"426783006", "284470004", "251173003"} <= labels[132]  # irregular sinus rhythm = NSR + PAC (bigeminy)
    assert "427393009" not in labels[132]


def test_age_and_sex():
    assert ludb_challenge.parse_age(">89") == 90
    assert ludb_challenge.parse_age("51\n") == 51
    assert math.isnan(ludb_challenge.parse_age("")) and math.isnan(ludb_challenge.parse_age("n/a"))


def test_age_over_89_in_the_real_table(ludb_root):
    ages = {row.number: row.age for row in ludb_challenge.read_table(ludb_root)}
    assert ages[34] == 90  # written '>89' in ludb.csv
    assert not any(math.isnan(age) for age in ages.values())


# --------------------------------------------------------------------------- the records written


def test_headers_parse_with_the_helper_and_ecgio(converted, ludb_root):
    for number in HANDFUL:
        hea = converted / f"LU{number:05d}.hea"
        text = helper_code.load_header(str(hea))
        assert helper_code.get_frequency(text) == 500
        assert helper_code.get_num_samples(text) == 5000
        assert list(helper_code.get_leads(text)) == list(TWELVE_LEADS)
        assert helper_code.get_labels(text) == list(read_header(hea).labels)
        recording = helper_code.load_recording(str(hea.with_suffix(".mat")))
        assert recording.shape == (12, 5000) and recording.dtype == np.int16
        source = read_header(ludb_root / "data" / f"{number}.hea")
        # the official helper's literal gain rule float(token.split('/')[0]) reads LUDB's own gains
        gains = [float(line.split(" ")[2].split("/")[0]) for line in text.split("\n")[1:13]]
        assert gains == list(source.gains)
        assert list(helper_code.get_baselines(text, TWELVE_LEADS)) == list(source.baselines)
        header = read_header(hea)
        assert header.leads == TWELVE_LEADS and header.fs == 500 and header.num_samples == 5000


def test_signal_round_trips(converted, ludb_root):
    for number in HANDFUL:
        original = wfdb.rdrecord(str(ludb_root / "data" / str(number)), physical=False)
        written = helper_code.load_recording(str(converted / f"LU{number:05d}.mat"))
        # LUDB's lead order is already I, II, III, aVR, aVL, aVF, V1-V6: the ADC samples are copied unchanged
        np.testing.assert_array_equal(written, original.d_signal.T)
        ours, theirs = read_record(converted / f"LU{number:05d}.hea"), read_record(ludb_root / "data" / f"{number}.hea")
        one_unit = 1.0 / np.asarray(read_header(ludb_root / "data" / f"{number}.hea").gains)[:, None]
        assert np.all(np.abs(ours.signal - theirs.signal) <= one_unit)
        # WFDB reads the .mat directly through the 16+24 signal lines, with the same physical values
        again = wfdb.rdrecord(str(converted / f"LU{number:05d}"))
        np.testing.assert_array_equal(again.p_signal, wfdb.rdrecord(str(ludb_root / "data" / str(number))).p_signal)


def test_output_is_indexed_as_ludb(converted):
    index = build_index(converted, progress=False)
    assert index.records == [f"LU{number:05d}" for number in HANDFUL] and not index.skipped
    assert set(index.sources) == {"LUDB"}


def test_rerun_skips_and_redoes_a_damaged_record(ludb_root, tmp_path):
    out = tmp_path / "out"
    first = ludb_challenge.convert(ludb_root, out, progress=False, numbers=(1, 2))
    assert (first.written, first.skipped) == (2, 0)
    second = ludb_challenge.convert(ludb_root, out, progress=False, numbers=(1, 2))
    assert (second.written, second.skipped, second.failed) == (0, 2, 0)
    mat = out / "LU00002.mat"
    mat.write_bytes(mat.read_bytes()[:1000])
    third = ludb_challenge.convert(ludb_root, out, progress=False, numbers=(1, 2))
    assert (third.written, third.skipped, third.failed) == (1, 1, 0)
    assert helper_code.load_recording(str(mat)).shape == (12, 5000)
    # labels that no longer match the table (an edited mapping) are rewritten too
    hea = out / "LU00001.hea"
    hea.write_text(hea.read_text().replace("#Dx: 426177001,", "#Dx: 426783006,"))
    fourth = ludb_challenge.convert(ludb_root, out, progress=False, numbers=(1, 2))
    assert (fourth.written, fourth.skipped) == (1, 1)
    assert read_header(hea).labels[0] == "426177001"


# --------------------------------------------------------------------------- bad input


def test_missing_table_names_it(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(FileNotFoundError, match=r"ludb\.csv.*not found"):
        ludb_challenge.convert(tmp_path, tmp_path / "out", progress=False)
    assert ludb_challenge.main([str(tmp_path), str(tmp_path / "out")]) == 2


def test_a_broken_record_does_not_stop_the_rest(ludb_root, tmp_path):
    source = _copy_ludb(ludb_root, tmp_path / "ludb", (1, 2, 3))
    dat = source / "data" / "2.dat"
    dat.write_bytes(dat.read_bytes()[:5000])  # truncated signal file
    (source / "data" / "3.hea").unlink()  # a ludb.csv row without its record
    summary = ludb_challenge.convert(source, tmp_path / "out", progress=False)
    assert (summary.written, summary.failed) == (1, 2)
    assert any("2.dat" in error or "2.hea" in error for error in summary.errors), summary.errors
    assert any("3.hea" in error and "no header file" in error for error in summary.errors), summary.errors
    assert (tmp_path / "out" / "LU00001.hea").is_file() and not (tmp_path / "out" / "LU00002.hea").exists()


def test_unknown_statements_are_counted(ludb_root, tmp_path):
    source = _copy_ludb(ludb_root, tmp_path / "ludb", (2,))
    table = source / "ludb.csv"
    with table.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        rows, fields = list(reader), reader.fieldnames
    rows[0]["Rhythms"] += "\nJunctional rhythm"
    with table.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    summary = ludb_challenge.convert(source, tmp_path / "out", progress=False)
    assert summary.written == 1 and summary.unknown == {"Rhythms: Junctional rhythm": 1}
    assert "not in the mapping table: 1" in summary.line()
    assert "426783006" in read_header(tmp_path / "out" / "LU00002.hea").labels


def test_module_command_line(ludb_root, tmp_path):
    source = _copy_ludb(ludb_root, tmp_path / "ludb", (1, 2))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "ecgdata.ludb", str(source), str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("written 2, skipped 0 (already complete), failed 0;")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.hea")) == ["LU00001.hea", "LU00002.hea"]
