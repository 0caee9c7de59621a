"""The model-zoo benchmark end to end on a few dozen real PTB-XL records: table, records of settings, resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ecgreport import zoo
from ecgreport.zoo_table import published

ARCHS = ["resnet1d_wang", "seed001_cnn"]


def _args(ptbxl_dir, out, cache, *extra):
    return [
        "--data", str(ptbxl_dir), "--tasks", "superdiagnostic", "--archs", *ARCHS, "--lead-sets", "2",
        "--out", str(out), "--epochs", "1", "--max-records", "48", "--bootstrap", "50", "--jobs", "1",
        "--threads", "1", "--cache-dir", str(cache), *extra,
    ]  # fmt: skip


def test_zoo_end_to_end_and_resume(ptbxl_dir, tmp_path, monkeypatch):
    out, cache = tmp_path / "zoo", tmp_path / "cache"
    assert zoo.main(_args(ptbxl_dir, out, cache)) == 0
    with (out / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert sorted(row["architecture"] for row in rows) == sorted(ARCHS)
    for row in rows:
        assert row["task"] == "superdiagnostic" and row["leads"] == "2" and row["metric"] == "macro_auroc"
        assert int(row["params"]) > 0 and float(row["train_seconds"]) > 0 and float(row["infer_ms_per_record"]) > 0
        assert row["epochs_run"] == "1" and int(row["test_records"]) >= 2
        score, low, high = (float(row[k]) for k in ("score", "low", "high"))
        assert np.isnan(score) or (0 <= low <= high <= 1 and 0 <= score <= 1)
    assert all(row["published"] == "" for row in rows)  # published PTB-XL numbers are 12-lead ones
    assert "AUC .930" in published("superdiagnostic", "resnet1d_wang", 12)
    assert published("superdiagnostic", "dual_crnn", 12) == "" and "-.46" in published(
        "challenge2021", "seed001_cnn", 2
    )
    assert "`resnet1d_wang`" in (out / "results.md").read_text()
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cell = out / "cells" / "superdiagnostic" / "2-lead" / "resnet1d_wang"
    result = json.loads((cell / "result.json").read_text())
    assert result["seed"] == 0 and result["settings"]["architecture"] == "resnet1d_wang"
    assert result["settings"]["epochs"] == 1 and result["settings"]["threshold_strategy"] == "global"
    assert json.loads((out / "run.json").read_text())["args"]["epochs"] == "1"
    trained_stamp = (cell / "trained.pt").stat().st_mtime_ns

    def no_training(*_args, **_kwargs):
        raise AssertionError("a finished cell was trained again")

    # Resume: nothing is trained again, nothing rewritten.
    monkeypatch.setattr(zoo, "train_network", no_training)
    before = (cell / "result.json").read_text()
    assert zoo.main(_args(ptbxl_dir, out, cache)) == 0
    assert (cell / "result.json").read_text() == before and (cell / "trained.pt").stat().st_mtime_ns == trained_stamp

    # Another test folder (here: the sample's fold 8 again) is scored by the trained networks, not retrained.
    assert zoo.main(_args(ptbxl_dir, out, cache, "--test-data", str(ptbxl_dir), "--test-folds", "8")) == 0
    result = json.loads((cell / "result.json").read_text())
    assert set(result["tests"]) == {"test fold", str(ptbxl_dir.resolve())}
    other = result["tests"][str(ptbxl_dir.resolve())]
    assert other["records"] >= 2 and other["metric"] == "macro_auroc"
    assert (cell / "trained.pt").stat().st_mtime_ns == trained_stamp


def test_zoo_rejects_unknown_names(tmp_path):
    with pytest.raises(SystemExit):
        zoo.parse_args(["--out", str(tmp_path), "--archs", "no_such_network"])
    with pytest.raises(SystemExit):
        zoo.parse_args(["--out", str(tmp_path), "--tasks", "superdiag"])


def test_zoo_trains_each_architecture_with_its_declared_loss(tmp_path):
    """Seed 004 trained with focal loss (alpha 0.434, gamma 2.135): its zoo row must too; others keep BCE."""
    args = zoo.parse_args(["--out", str(tmp_path), "--archs", "resconv_bilstm_attn", "resnet1d_wang"])
    seed004 = zoo._settings(args, "resconv_bilstm_attn", ptbxl=True)
    assert seed004.loss == "focal" and seed004.loss_kwargs == {"alpha": 0.434, "gamma": 2.135}
    assert seed004.learning_rate == pytest.approx(4.67e-4)
    assert zoo._settings(args, "resnet1d_wang", ptbxl=True).loss == "bce"
