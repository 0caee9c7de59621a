"""The dataset index on the 25 real Challenge records of ../shared/data, plus small crafted folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ecgdata import index as index_module
from ecgdata.index import DatasetIndex, build_index, load_or_build, save_index, source_of
from ecgscore.classes import ABBREVIATIONS


def _dx_codes(header: Path) -> list[str]:
    """The #Dx codes of a header, read with plain string operations (both spellings)."""
    for line in header.read_text().splitlines():
        if line.replace(" ", "").startswith("#Dx:"):
            return [code.strip() for code in line.split(":", 1)[1].split(",") if code.strip()]
    return []


def _copy_headers(source: Path, target: Path, names: list[str] | None = None) -> Path:
    """Headers copied, signal files stood in by empty .mat files (the index never opens them)."""
    target.mkdir(parents=True, exist_ok=True)
    for header in sorted(source.glob("*.hea")):
        if names is None or header.stem in names:
            shutil.copy(header, target / header.name)
            (target / f"{header.stem}.mat").touch()
    return target


def test_sources_from_name_prefixes():
    expected = {
        "A0001": "CPSC",
        "Q0001": "CPSC-Extra",
        "I0001": "StPetersburg",
        "S0001": "PTB",
        "HR00001": "PTB-XL",
        "E00001": "Georgia",
        "JS00001": "Chapman-Shaoxing",
        "JS10646": "Chapman-Shaoxing",
        "JS10647": "Ningbo",
        "JS20000": "Ningbo",
        "LU00001": "LUDB",
        "SYN00001": "Synthetic",
        "X123": "unknown",
        "record": "unknown",
        "A": "unknown",
    }
    assert {name: source_of(name) for name in expected} == expected


def test_index_of_the_real_sample(cinc_dir):
    index = build_index(cinc_dir, progress=False)
    assert len(index) == 25 and not index.skipped
    assert index.records == sorted(index.records)
    sources = dict(zip(index.records, index.sources))
    assert {sources[f"E0750{i}"] for i in range(10)} == {"Georgia"}
    assert {sources[f"HR0600{i}"] for i in range(5)} == {"PTB-XL"}
    assert {sources[f"JS2000{i}"] for i in range(10)} == {"Ningbo"}
    assert np.all(index.fs == 500) and np.all(index.samples == 5000)
    assert all(len(leads) == 12 and leads[3] == "aVR" for leads in index.leads)
    for i, record in enumerate(index.records):
        assert list(index.labels[i]) == _dx_codes(cinc_dir / f"{record}.hea")
    assert index.targets.shape == (25, 26) and index.targets.dtype == bool
    hr06000 = index.records.index("HR06000")
    assert set(np.flatnonzero(index.targets[hr06000])) == {ABBREVIATIONS.index("TAb"), ABBREVIATIONS.index("NSR")}
    assert index.ages[hr06000] == 59 and index.sexes[hr06000] == "Female"


def test_equivalent_codes_are_merged(cinc_dir):
    index = build_index(cinc_dir, progress=False)
    pvc, rbbb = ABBREVIATIONS.index("PVC"), ABBREVIATIONS.index("RBBB")
    for i, labels in enumerate(index.labels):
        assert index.targets[i, pvc] == bool({"427172004", "17338001"} & set(labels))
        assert index.targets[i, rbbb] == bool({"713427006", "59118001"} & set(labels))
    assert index.targets[:, pvc].sum() == sum(bool({"427172004", "17338001"} & set(l)) for l in index.labels) > 0


def test_equivalence_pairs_count_as_one_class(cinc_dir, tmp_path):
    text = (cinc_dir / "E07500.hea").read_text()
    for name, code in (("E00001", "164909002"), ("E00002", "733534002"), ("E00003", "164909002,733534002")):
        body = text.replace("E07500", name).replace("67741000119109,426177001", code)
        (tmp_path / f"{name}.hea").write_text(body)
        (tmp_path / f"{name}.mat").touch()
    index = build_index(tmp_path, progress=False)
    assert index.class_counts()["Georgia"][ABBREVIATIONS.index("LBBB")] == 3


def test_recursive_and_bad_headers_skipped(cinc_dir, tmp_path):
    _copy_headers(cinc_dir, tmp_path / "g1", ["E07500", "E07501"])
    _copy_headers(cinc_dir, tmp_path / "g2" / "deeper", ["JS20000"])
    (tmp_path / "g2" / "BAD01.hea").write_text("BAD01 twelve 500 5000\n")
    (tmp_path / "g2" / "BAD01.mat").touch()
    (tmp_path / "g2" / "NOSIG.hea").write_text((cinc_dir / "E07502.hea").read_text())  # no signal file: not a record
    index = build_index(tmp_path, progress=False)
    assert sorted(index.records) == ["E07500", "E07501", "JS20000"]
    assert len(index.skipped) == 1 and "BAD01.hea" in index.skipped[0] and "number of leads" in index.skipped[0]
    assert "1 header(s) skipped" in index.report()


def test_csv_round_trip(cinc_dir, tmp_path):
    data = _copy_headers(cinc_dir, tmp_path / "data")
    index = build_index(data, progress=False)
    index.ages[0] = np.nan
    index.sexes[1] = None
    saved = save_index(index, data)
    assert saved == data / "dataset_index.csv"
    back = DatasetIndex.load(saved)
    assert back.records == index.records and back.sources == index.sources
    assert [p.resolve() for p in back.paths] == [p.resolve() for p in index.paths]
    assert np.array_equal(back.fs, index.fs) and np.array_equal(back.samples, index.samples)
    assert back.leads == index.leads and back.labels == index.labels and back.sexes == index.sexes
    assert np.array_equal(back.ages, index.ages, equal_nan=True)
    assert np.array_equal(back.targets, index.targets)
    assert saved.read_text().splitlines()[1].split(",")[1] == "E07500.hea"  # stored relative to the data
    with pytest.raises(ValueError, match="not a dataset index"):
        DatasetIndex.load(cinc_dir / "E07500.hea")


def test_saved_index_is_loaded_without_reading_headers(cinc_dir, tmp_path, monkeypatch):
    data = _copy_headers(cinc_dir, tmp_path / "data")
    built, path = load_or_build(data, progress=False)
    assert path == data / "dataset_index.csv"

    def no_reading(*args, **kwargs):
        raise AssertionError("headers were read again")

    monkeypatch.setattr(index_module, "read_header", no_reading)
    loaded, again = load_or_build(data, progress=False)
    assert again == path and loaded.records == built.records
    monkeypatch.undo()
    shutil.copy(cinc_dir / "E07500.hea", data / "E99999.hea")
    (data / "E99999.mat").touch()
    grown, _ = load_or_build(data, progress=False)  # the folder changed: rebuilt
    assert len(grown) == 26


def test_fallback_when_the_data_folder_cannot_be_written(cinc_dir, tmp_path):
    index = build_index(cinc_dir, progress=False)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    saved = save_index(index, not_a_folder, fallback=tmp_path / "elsewhere" / "index.csv")
    assert saved == tmp_path / "elsewhere" / "index.csv" and len(DatasetIndex.load(saved)) == 25
    with pytest.raises(OSError, match="fallback"):
        save_index(index, not_a_folder)


def test_report_counts_per_source(cinc_dir):
    index = build_index(cinc_dir, progress=False)
    counts = index.class_counts()
    assert list(counts) == ["PTB-XL", "Georgia", "Ningbo"]
    stach = ABBREVIATIONS.index("STach")
    for source in counts:
        expected = sum(
            "427084000" in _dx_codes(cinc_dir / f"{r}.hea") for r, s in zip(index.records, index.sources) if s == source
        )
        assert counts[source][stach] == expected
    lines = {line.split()[0]: line.split() for line in index.report().splitlines()}
    assert lines["class"][2:] == ["PTB-XL", "Georgia", "Ningbo", "total", "diagnosis"]
    assert lines["records"][1:] == ["5", "10", "10", "25"]
    assert lines["STach"][2:6] == [str(int(counts[s][stach])) for s in counts] + [
        str(int(index.targets[:, stach].sum()))
    ]
    assert " ".join(lines["STach"][6:]) == "sinus tachycardia"  # people read names beside the codes
    assert " ".join(lines["NSIVCB"][6:]) == "nonspecific intraventricular conduction disorder"


def test_cli_prints_the_report(cinc_dir, tmp_path, capsys):
    data = _copy_headers(cinc_dir, tmp_path / "data")
    assert index_module.main([str(data)]) == 0
    out = capsys.readouterr().out
    assert "Georgia" in out and "25 records indexed" in out
    assert (data / "dataset_index.csv").is_file()
