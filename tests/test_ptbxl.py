"""PTB-XL importer and superdiagnostic task, checked on the 353 real PTB-XL records of ../shared/data."""

from __future__ import annotations

import ast
import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy.io import loadmat

from ecgdata import ptbxl
from ecgdata.challenge_format import is_complete_record, wfdb_checksum, write_challenge_record
from ecgdata.ptbxl_tasks import SUPERCLASSES, load_superdiagnostic
from ecgio import read_record
from ecgio.leads import TWELVE_LEADS

MAPPING_CSV = Path(__file__).resolve().parents[1] / "ecgdata" / "ptbxl_to_snomed.csv"


def _mapping_table() -> tuple[dict[str, str], dict[str, str]]:
    """The shipped mapping, read independently of the importer."""
    lines = [line for line in MAPPING_CSV.read_text().splitlines() if line and not line.startswith("#")]
    statements, axis = {}, {}
    for row in csv.DictReader(lines):
        if row["scp_code"].startswith("heart_axis="):
            axis[row["scp_code"][len("heart_axis=") :]] = row["snomed_code"]
        else:
            statements[row["scp_code"]] = row["snomed_code"]
    return statements, axis


def _database(ptbxl_dir: Path) -> list[dict[str, str]]:
    with (ptbxl_dir / "ptbxl_database.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


def official_parse(header_text: str) -> dict:
    """The official helper_code.py parsing rules, restated literally (see docs: challenge-interface)."""
    lines = header_text.split("\n")
    first = lines[0].split(" ")
    num_leads = int(first[1])
    parsed = {"id": first[0], "num_leads": num_leads, "fs": float(first[2]), "num_samples": int(float(first[3]))}
    parsed["leads"] = [line.split(" ")[-1] for line in lines[1 : num_leads + 1]]
    parsed["gains"] = [float(line.split(" ")[2].split("/")[0]) for line in lines[1 : num_leads + 1]]
    parsed["baselines"] = [float(line.split(" ")[4]) for line in lines[1 : num_leads + 1]]
    parsed["labels"], parsed["age"], parsed["sex"] = [], None, None
    for line in lines:
        if line.startswith("#Dx"):
            parsed["labels"] += [entry.strip() for entry in line.split(": ")[1].split(",")]
        elif line.startswith("#Age"):
            try:
                parsed["age"] = float(line.split(": ")[1].strip())
            except ValueError:
                parsed["age"] = float("nan")
        elif line.startswith("#Sex"):
            parsed["sex"] = line.split(": ")[1].strip()
    return parsed


@pytest.fixture(scope="session")
def converted(ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ptbxl.ConversionSummary]:
    """All 353 sample records converted once per session at 500 Hz."""
    out = tmp_path_factory.mktemp("ptbxl_challenge")
    summary = ptbxl.convert(ptbxl_dir, out, rate=500, jobs=2, progress=False)
    return out, summary


def test_every_record_is_converted(converted, ptbxl_dir):
    out, summary = converted
    rows = _database(ptbxl_dir)
    assert len(rows) == 353
    assert (summary.written, summary.skipped, summary.failed) == (353, 0, 0)
    names = sorted(path.stem for path in out.glob("*.hea"))
    assert names == sorted(f"HR{int(row['ecg_id']):05d}" for row in rows)
    assert len(list(out.glob("*.mat"))) == 353
    assert not list(out.glob(".*tmp"))  # no temporary files left behind


def test_labels_follow_the_mapping(converted, ptbxl_dir):
    out, summary = converted
    statements, axis = _mapping_table()
    unmapped = Counter()
    for row in _database(ptbxl_dir):
        scp = ast.literal_eval(row["scp_codes"])
        expected = {statements[code] for code in scp if code in statements}
        unmapped.update(code for code in scp if code not in statements)
        if row["heart_axis"] in axis:
            expected.add(axis[row["heart_axis"]])
        labels = read_record(out / f"HR{int(row['ecg_id']):05d}.hea").labels
        assert set(labels) == expected, row["ecg_id"]
        assert len(labels) == len(set(labels))
    assert summary.unmapped == unmapped
    assert sum(unmapped.values()) > 0  # the sample has statements without a code (e.g. IMI, LVH)


def test_record_one(converted):
    out, _ = converted
    record = read_record(out / "HR00001.hea")
    assert set(record.labels) == {"426783006", "251146004"}  # {'NORM','LVOLT','SR'}
    assert record.age == 56 and record.sex == "Female"  # PTB-XL sex 1 = female
    assert record.leads == TWELVE_LEADS and record.fs == 500 and record.num_samples == 5000


def test_signals_equal_the_source_within_one_microvolt(converted, ptbxl_dir):
    out, _ = converted
    for row in _database(ptbxl_dir):
        source = wfdb.rdrecord(str(ptbxl_dir / row["filename_hr"]))
        order = [source.sig_name.index(lead.upper() if lead.startswith("aV") else lead) for lead in TWELVE_LEADS]
        expected = source.p_signal[:, order].T
        ours = read_record(out / f"HR{int(row['ecg_id']):05d}.hea").signal
        assert ours.shape == expected.shape
        assert np.max(np.abs(ours - expected)) <= 0.001 + 1e-6, row["ecg_id"]


def test_header_follows_the_official_parsing_rules(converted, ptbxl_dir):
    out, _ = converted
    source = wfdb.rdrecord(str(ptbxl_dir / "records500/00000/00002_hr"))
    text = (out / "HR00002.hea").read_text()
    parsed = official_parse(text)
    assert parsed["id"] == "HR00002" and parsed["num_leads"] == 12 and parsed["fs"] == 500.0
    assert parsed["num_samples"] == 5000
    assert parsed["leads"] == list(TWELVE_LEADS)
    assert parsed["gains"] == [1000.0] * 12 and parsed["baselines"] == [0.0] * 12
    assert parsed["labels"] == ["426783006", "426177001"]  # {'NORM': 80, 'SBRAD': 0}
    assert parsed["age"] == 19.0 and parsed["sex"] == "Male"
    raw = loadmat(str(out / "HR00002.mat"))["val"]
    assert raw.dtype == np.int16 and raw.shape == (12, 5000)
    physical = (raw - np.array(parsed["baselines"])[:, None]) / np.array(parsed["gains"])[:, None]
    order = [source.sig_name.index(lead.upper() if lead.startswith("aV") else lead) for lead in TWELVE_LEADS]
    assert np.max(np.abs(physical - source.p_signal[:, order].T)) <= 0.001 + 1e-6


def test_wfdb_reads_the_written_record(converted):
    out, _ = converted
    ours = wfdb.rdrecord(str(out / "HR00003"), physical=False)
    raw = loadmat(str(out / "HR00003.mat"))["val"]
    assert ours.sig_name == list(TWELVE_LEADS) and ours.fs == 500
    assert np.array_equal(ours.d_signal.T, raw)
    assert ours.adc_gain == [1000.0] * 12
    for lead in range(12):
        assert ours.init_value[lead] == raw[lead, 0]
        assert ours.checksum[lead] == wfdb_checksum(raw[lead])
        assert (ours.checksum[lead] - int(raw[lead].astype(np.int64).sum())) % 65536 == 0
        assert -32768 <= ours.checksum[lead] <= 32767


def _small_ptbxl(ptbxl_dir: Path, folder: Path, rows: list[dict[str, str]], column: str = "filename_hr") -> Path:
    """A PTB-XL-shaped folder holding the given database rows (their ``column`` records copied from the sample)."""
    folder.mkdir()
    for row in rows:
        for suffix in (".hea", ".dat"):
            source = ptbxl_dir / (row[column] + suffix)
            if source.exists():
                target = folder / (row[column] + suffix)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
    with (folder / "ptbxl_database.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_edge_cases_age_axis_unmapped_and_a_missing_file(ptbxl_dir, tmp_path):
    rows = _database(ptbxl_dir)[:3]
    rows[0] = dict(rows[0], age="300", sex="0", heart_axis="RAD", scp_codes="{'IMI': 50.0, 'SR': 0.0, 'PVC': 100.0}")
    rows[1] = dict(rows[1], age="", heart_axis="MID")
    rows[2] = dict(rows[2], filename_hr="records500/00000/99999_hr")  # no such file
    source = _small_ptbxl(ptbxl_dir, tmp_path / "ptbxl", rows)
    summary = ptbxl.convert(source, tmp_path / "out", jobs=1, progress=False)
    assert (summary.written, summary.failed) == (2, 1)
    assert "99999_hr" in summary.errors[0]
    assert summary.unmapped == Counter({"IMI": 1})
    first = read_record(tmp_path / "out" / "HR00001.hea")
    assert first.age == 90.0 and first.sex == "Male"
    assert first.labels == ("426783006", "164884008", "47665007")  # SR, PVC (unscored VEB), RAD
    second = read_record(tmp_path / "out" / "HR00002.hea")
    assert np.isnan(second.age) and "39732003" not in second.labels and "47665007" not in second.labels
    assert "IMI 1" in summary.line()


def test_resume_skips_complete_records_and_redoes_damaged_ones(ptbxl_dir, tmp_path):
    source = _small_ptbxl(ptbxl_dir, tmp_path / "ptbxl", _database(ptbxl_dir)[:4])
    out = tmp_path / "out"
    first = ptbxl.convert(source, out, jobs=1, progress=False)
    assert (first.written, first.skipped) == (4, 0)
    again = ptbxl.convert(source, out, jobs=1, progress=False)
    assert (again.written, again.skipped) == (0, 4)
    mat = out / "HR00002.mat"
    mat.write_bytes(mat.read_bytes()[:5000])  # truncated, as by an interrupted copy
    (out / "HR00004.mat").unlink()
    assert not is_complete_record(out / "HR00002.hea", 12)
    redone = ptbxl.convert(source, out, jobs=1, progress=False)
    assert (redone.written, redone.skipped) == (2, 2)
    assert is_complete_record(out / "HR00002.hea", 12, fs=500)
    assert not is_complete_record(out / "HR00002.hea", 12, fs=100)  # a 100 Hz run would redo it


def test_cli_100_hz(ptbxl_dir, tmp_path, capsys):
    source = _small_ptbxl(ptbxl_dir, tmp_path / "ptbxl", _database(ptbxl_dir)[:2], column="filename_lr")
    code = ptbxl.main([str(source), str(tmp_path / "out"), "--rate", "100"])
    assert code == 0
    assert "written 2, skipped 0" in capsys.readouterr().out
    record = read_record(tmp_path / "out" / "HR00001.hea")
    assert record.fs == 100 and record.num_samples == 1000


def test_writer_clips_with_a_warning_and_rejects_bad_input(tmp_path, caplog):
    signal = np.zeros((12, 100), dtype=np.float32)
    signal[3, 10] = 40.0  # 40 mV: beyond int16 at 1000/mV
    path = write_challenge_record(tmp_path, "X1", signal, 500, TWELVE_LEADS, None, None, ["426783006"])
    assert "clipped" in caplog.text
    assert loadmat(str(path.with_suffix(".mat")))["val"][3, 10] == 32767
    assert "#Age: NaN" in path.read_text() and "#Sex: Unknown" in path.read_text()
    with pytest.raises(ValueError, match="X2"):
        write_challenge_record(tmp_path, "X2", np.full((12, 10), np.nan), 500, TWELVE_LEADS, 50, "Male", [])
    with pytest.raises(ValueError, match="shape"):
        write_challenge_record(tmp_path, "X3", np.zeros((11, 10)), 500, TWELVE_LEADS, 50, "Male", [])


def test_superdiagnostic_task_against_scp_statements(ptbxl_dir):
    import pandas as pd

    statements = pd.read_csv(ptbxl_dir / "scp_statements.csv", index_col=0)
    diagnostic = statements[statements.diagnostic == 1]
    database = pd.read_csv(ptbxl_dir / "ptbxl_database.csv", index_col="ecg_id")
    expected = {}
    for ecg_id, codes in database.scp_codes.items():
        classes = {
            diagnostic.loc[code, "diagnostic_class"] for code in ast.literal_eval(codes) if code in diagnostic.index
        }
        if classes:
            expected[ecg_id] = classes
    task = load_superdiagnostic(ptbxl_dir, rate=100)
    assert task.classes == SUPERCLASSES == ("NORM", "MI", "STTC", "CD", "HYP")
    assert len(task) == len(expected) and task.dropped == len(database) - len(expected)
    for i, ecg_id in enumerate(task.ecg_ids):
        assert {SUPERCLASSES[k] for k in np.flatnonzero(task.targets[i])} == expected[ecg_id]
    assert task.targets.any(axis=1).all()
    assert set(task.targets[list(task.ecg_ids).index(1)].nonzero()[0]) == {0}  # record 1: NORM only
    folds = database.loc[task.ecg_ids, "strat_fold"].to_numpy()
    assert np.array_equal(task.strat_fold, folds)
    assert np.array_equal(np.sort(np.concatenate([task.train, task.validation, task.test])), np.arange(len(task)))
    assert set(task.strat_fold[task.train]) <= set(range(1, 9))
    assert len(task.validation) == np.sum(folds == 9) and len(task.test) == np.sum(folds == 10)


def test_superdiagnostic_reads_signals_lazily(ptbxl_dir):
    for rate, samples in ((100, 1000), (500, 5000)):
        task = load_superdiagnostic(ptbxl_dir, rate=rate)
        signal, target = task[0]
        assert signal.shape == (12, samples) and signal.dtype == np.float32
        assert target.shape == (5,) and task.names[0] == "HR00001"
        assert task.paths[0].name == ("00001_lr" if rate == 100 else "00001_hr")
    with pytest.raises(ValueError):
        load_superdiagnostic(ptbxl_dir, rate=250)
