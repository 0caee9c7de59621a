"""``python -m ecgsignal delineate|plot``: CSV layout, sample-rate conversion, bad records."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgio import read_record
from ecgplot.cli import main as plot_main
from ecgsignal.cli import CSV_COLUMNS, main
from ecgsignal.records import to_record_rate

ROOT = Path(__file__).resolve().parents[1]
RECORD = "E07500"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def _qrs_peaks(rows: list[dict[str, str]], lead: str) -> np.ndarray:
    return np.array([int(r["peak"]) for r in rows if r["lead"] == lead and r["wave"] == "QRS" and r["peak"]])


def _write_resampled(source: Path, out_dir: Path, fs_new: int) -> Path:
    """A real record resampled to ``fs_new`` and written as a WFDB record (.hea + .dat)."""
    import wfdb
    from scipy.signal import resample_poly

    record = read_record(source)
    up, down = fs_new, int(record.fs)
    divisor = np.gcd(up, down)
    x = resample_poly(record.signal.astype(np.float64), up // divisor, down // divisor, axis=1)
    name = f"{record.name}_{fs_new}"
    wfdb.wrsamp(
        name,
        fs=fs_new,
        units=["mV"] * len(record.leads),
        sig_name=list(record.leads),
        p_signal=x.T,
        fmt=["16"] * len(record.leads),
        adc_gain=[1000.0] * len(record.leads),
        baseline=[0] * len(record.leads),
        write_dir=str(out_dir),
    )
    return out_dir / f"{name}.hea"


@pytest.fixture(scope="module")
def rows_500(cinc_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    out = tmp_path_factory.mktemp("csv") / "d.csv"
    assert main(["delineate", str(cinc_dir / RECORD), "-o", str(out), "-q"]) == 0
    return _read_csv(out)


def test_csv_rows_cover_every_beat_lead_and_wave(rows_500: list[dict[str, str]], cinc_dir: Path) -> None:
    record = read_record(cinc_dir / RECORD)
    beats = sorted({int(r["beat"]) for r in rows_500})
    assert beats == list(range(len(beats))) and len(beats) >= 8  # a 10-s record at ~58 bpm
    assert len(rows_500) == len(beats) * len(record.leads) * 3
    assert {r["wave"] for r in rows_500} == {"P", "QRS", "T"}
    assert {r["lead"] for r in rows_500} == set(record.leads)
    assert {r["record"] for r in rows_500} == {RECORD}
    for row in rows_500:
        cells = [int(row[c]) for c in ("onset", "peak", "offset") if row[c] != ""]
        assert all(0 <= v < record.num_samples for v in cells)
        assert cells == sorted(cells), row


def test_csv_is_at_the_record_rate(rows_500: list[dict[str, str]], cinc_dir: Path) -> None:
    """QRS peaks in the CSV sit on lead II's R waves in the record's own 500 Hz samples."""
    record = read_record(cinc_dir / RECORD)
    lead_ii = record.signal[record.leads.index("II")]
    peaks = _qrs_peaks(rows_500, "II")
    assert peaks.size >= 8
    assert peaks.max() > record.num_samples / 2  # not left at the 250 Hz processing scale
    for p in peaks:
        window = lead_ii[max(p - 10, 0) : p + 11]  # +-20 ms
        assert abs(int(np.argmax(window)) + max(p - 10, 0) - p) <= 4  # 2 processing samples


@pytest.mark.parametrize("fs_new", [1000, 257])
def test_resampled_record_gives_the_same_points_in_its_own_samples(
    fs_new: int, cinc_dir: Path, rows_500: list[dict[str, str]], tmp_path: Path
) -> None:
    header = _write_resampled(cinc_dir / f"{RECORD}.hea", tmp_path, fs_new)
    out = tmp_path / "d.csv"
    assert main(["delineate", str(header), "-o", str(out), "-q"]) == 0
    rows = _read_csv(out)
    ours, reference = _qrs_peaks(rows, "II"), _qrs_peaks(rows_500, "II")
    assert ours.size == reference.size
    expected = reference * fs_new / 500.0
    assert np.max(np.abs(ours - expected)) <= 2 * fs_new / 250.0  # two processing samples
    assert ours.max() < fs_new * 10


def test_bad_record_is_named_and_skipped(cinc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "broken.hea"
    bad.write_text("broken 12 five-hundred 5000\n")
    (tmp_path / "broken.mat").write_bytes(b"not a matlab file")
    out = tmp_path / "d.csv"
    status = main(["delineate", str(bad), str(cinc_dir / RECORD), "-o", str(out), "-q"])
    assert status == 1
    assert str(bad) in capsys.readouterr().err
    assert {r["record"] for r in _read_csv(out)} == {RECORD}  # the good record is still written


def test_missing_file_and_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["delineate", str(tmp_path / "nothere.hea"), "-o", str(tmp_path / "a.csv")]) == 1
    assert "nothere.hea" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["delineate", str(empty), "-o", str(tmp_path / "b.csv")]) == 1
    assert "no records" in capsys.readouterr().err


def test_folder_argument_processes_every_record(cinc_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    for fs_new in (1000, 257):
        _write_resampled(cinc_dir / f"{RECORD}.hea", folder, fs_new)
    out = tmp_path / "d.csv"
    assert main(["delineate", str(folder), "-o", str(out), "-q"]) == 0
    assert {r["record"] for r in _read_csv(out)} == {f"{RECORD}_1000", f"{RECORD}_257"}


def test_to_record_rate_keeps_absent_and_clips() -> None:
    points = np.array([[-1, 0, 10, 249]])
    assert to_record_rate(points, 250.0, 500.0, 500).tolist() == [[-1, 0, 20, 498]]
    assert to_record_rate(points, 250.0, 1000.0, 990).tolist() == [[-1, 0, 40, 989]]
    assert to_record_rate(points, 250.0, 257.0, 300).tolist() == [[-1, 0, 10, 256]]


def test_module_entry_point_plots_png(cinc_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ecg.png"
    result = subprocess.run(
        [sys.executable, "-m", "ecgplot", str(cinc_dir / RECORD), "-o", str(out), "--seconds", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run(
        [sys.executable, "-m", "ecgplot", str(tmp_path / "missing.hea"), "-o", str(tmp_path / "x.png")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "missing.hea" in bad.stderr


def test_plot_given_a_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert plot_main([str(tmp_path), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "cannot read header" not in err


def test_csv_gives_seconds_and_the_multilead_r(rows_500: list[dict[str, str]], cinc_dir: Path) -> None:
    """Every row says its rate, its points in seconds, and the beat's voted R, shared by all its leads."""
    for row in rows_500:
        assert row["fs"] == "500"
        for column in ("onset", "peak", "offset", "beat_r"):
            if row[column]:
                assert abs(float(row[f"{column}_s"]) - int(row[column]) / 500.0) < 1e-6
            else:
                assert row[f"{column}_s"] == ""
    by_beat: dict[str, set[str]] = {}
    for row in rows_500:
        by_beat.setdefault(row["beat"], set()).add(row["beat_r"])
    assert all(len(values) == 1 and "" not in values for values in by_beat.values())
    # the voted R lies within 50 ms of lead II's own R wherever lead II has one
    for row in rows_500:
        if row["lead"] == "II" and row["wave"] == "QRS" and row["peak"]:
            assert abs(int(row["peak"]) - int(row["beat_r"])) <= 25
