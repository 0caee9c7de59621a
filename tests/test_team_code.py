"""The classifier end to end: train_model.py -> test_model.py -> evaluate_model.py on real records with a
tiny configuration, an official-style harness loop, run_model on odd input, and interrupted training."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from conftest import copy_records

import helper_code
import team_code
from ecgio.leads import LEAD_SETS, TWELVE_LEADS
from ecgserve import model_folder
from ecgtrain.settings import Settings
from ecgtrain.workflow import train_all

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "epochs": 2,
    "batch_size": 8,
    "n_jobs": 1,
    "threads": 1,  # bit-for-bit equal runs need the same thread count, which otherwise follows the machine's load
    "progress": False,
    "model_kwargs": {
        "raw_widths": [8, 12],
        "fiducial_widths": [4, 8],
        "rnn_hidden": 8,
        "tabular_hidden": 8,
        "head_hidden": 16,
    },
}


def tiny_settings(tmp: Path, **changes) -> Settings:
    return replace(Settings.from_dict(TINY), cache_dir=str(tmp / "cache"), **changes)


@pytest.fixture(scope="module")
def data_dir(cinc_dir: Path, tmp_path_factory) -> Path:
    """A copy of the real Challenge sample (so tests may add files beside it)."""
    return copy_records(cinc_dir, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory) -> Path:
    """All five lead-set networks trained in-process on the 25 real records (tiny network)."""
    work = tmp_path_factory.mktemp("trained")
    train_all(data_dir, work / "model", tiny_settings(work))
    return work / "model"


def _write_record(folder: Path, name: str, signal_mv: np.ndarray, fs: float, leads) -> Path:
    """A Challenge record (1000/mV gains) for odd-input tests."""
    adc = np.round(signal_mv * 1000).astype(np.int16)
    scipy.io.savemat(folder / f"{name}.mat", {"val": adc}, format="4")
    lines = [f"{name} {len(leads)} {fs:g} {adc.shape[1]}"]
    lines += [f"{name}.mat 16+24 1000/mV 16 0 {row[0]} 0 0 {lead}" for row, lead in zip(adc, leads)]
    lines += ["#Age: 60", "#Sex: Female", "#Dx: 426783006"]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / f"{name}.hea"


def _check_outputs(classes, labels, probabilities, model) -> None:
    assert list(classes) == list(model.classes) and len(classes) == 26
    assert labels.shape == (26,) and set(np.unique(labels)) <= {0, 1}
    assert probabilities.shape == (26,) and np.all(np.isfinite(probabilities))
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_manifest_describes_every_lead_set(trained: Path):
    manifest = model_folder.read_manifest(trained)
    assert [tuple(entry["leads"]) for entry in manifest["models"].values()] == list(LEAD_SETS)
    assert len(manifest["classes"]) == 26 and manifest["seed"] == 0
    for entry in manifest["models"].values():
        assert (trained / entry["file"]).exists()
        assert len(entry["thresholds"]) == 26 and 0 < entry["best_epoch"] <= 2
        assert set(entry["validation"]) >= {"challenge_metric", "auroc", "f_measure"}
    assert manifest["complete"] is True and manifest["task"] == "challenge2021"
    assert not list(trained.glob("*.tmp")) and not list(trained.glob(".partial-*"))


def test_same_seed_trains_the_same_network(data_dir: Path, trained: Path, tmp_path: Path):
    settings = tiny_settings(tmp_path, lead_sets=(("I", "II"),))
    again = train_all(data_dir, tmp_path / "again", settings)["models"]["I-II"]
    original = model_folder.read_manifest(trained)["models"]["I-II"]
    assert again["sha256"] == original["sha256"]
    assert again["thresholds"] == original["thresholds"]


def test_official_style_harness_loop(trained: Path, data_dir: Path, tmp_path: Path):
    """What the Challenge's own test_model.py does, step by step, with the helper API."""
    header_files, recording_files = helper_code.find_challenge_files(str(data_dir))
    loaded = {}
    for header_file, recording_file in zip(header_files, recording_files):
        header = helper_code.load_header(header_file)
        leads = helper_code.sort_leads(helper_code.get_leads(header))
        if leads not in loaded:
            loaded[leads] = team_code.load_model(str(trained), leads)
        recording = helper_code.load_recording(recording_file)
        classes, labels, probabilities = team_code.run_model(loaded[leads], header, recording)
        _check_outputs(classes, labels, probabilities, loaded[leads])
        out = tmp_path / (Path(header_file).stem + ".csv")
        helper_code.save_outputs(str(out), helper_code.get_recording_id(header), classes, labels, probabilities)
        assert len(out.read_text().splitlines()) == 4


@pytest.mark.parametrize("leads", LEAD_SETS, ids=lambda leads: f"{len(leads)}-lead")
def test_scripts_end_to_end_for_each_lead_set(trained: Path, data_dir: Path, tmp_path: Path, leads):
    """extract_leads_wfdb.py -> test_model.py -> evaluate_model.py, as a user runs them."""
    reduced = tmp_path / "reduced"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, str(ROOT / "extract_leads_wfdb.py"), "-i", str(data_dir), "-o", str(reduced), "-l", *leads],
        check=True,
        env=env,
        capture_output=True,
    )
    outputs = tmp_path / "outputs"
    run = subprocess.run(
        [sys.executable, str(ROOT / "test_model.py"), str(trained), str(reduced), str(outputs)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    names = sorted(p.stem for p in reduced.glob("*.hea"))
    assert sorted(p.stem for p in outputs.glob("*.csv")) == names and len(names) == 25
    for path in outputs.glob("*.csv"):
        _, classes, labels, probabilities = helper_code.load_outputs(str(path))
        assert len(classes) == len(labels) == len(probabilities) == 26
        assert all(0.0 <= float(p) <= 1.0 for p in probabilities)
    scores = tmp_path / "scores.csv"
    evaluation = subprocess.run(
        [sys.executable, str(ROOT / "evaluate_model.py"), str(reduced), str(outputs), str(scores)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    header, values = scores.read_text().splitlines()
    assert header == "AUROC,AUPRC,Accuracy,F-measure,Challenge metric"
    assert all(v == "nan" or -10 < float(v) <= 1 for v in values.split(","))


def test_train_model_script_with_settings_file(data_dir: Path, tmp_path: Path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({**TINY, "epochs": 1, "lead_sets": [["I", "II"]], "cache_dir": str(tmp_path / "c")}))
    env = {**os.environ, "ECG_SETTINGS": str(settings), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "train_model.py"), str(data_dir), str(tmp_path / "m")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert list(model_folder.read_manifest(tmp_path / "m")["models"]) == ["I-II"]
    bad = subprocess.run([sys.executable, str(ROOT / "train_model.py"), str(data_dir)], capture_output=True, text=True)
    assert bad.returncode != 0 and "usage" in (bad.stderr + bad.stdout).lower()


def _real_signal(cinc_dir: Path) -> tuple[np.ndarray, float]:
    from ecgio import read_record

    record = read_record(cinc_dir / "E07500.hea")
    return record.signal.astype(np.float64), record.fs


@pytest.mark.parametrize(
    "case",
    ["257Hz", "1000Hz", "2.5s", "30min", "flat_lead", "reversed_leads", "nan_samples", "unknown_lead_set", "all_zero"],
)
def test_run_model_on_odd_input(trained: Path, cinc_dir: Path, tmp_path: Path, case: str):
    from scipy.signal import resample_poly

    signal, fs = _real_signal(cinc_dir)
    leads = list(TWELVE_LEADS)
    if case == "257Hz":
        signal, fs = resample_poly(signal, 257, 500, axis=1), 257.0
    elif case == "1000Hz":
        signal, fs = resample_poly(signal, 2, 1, axis=1), 1000.0
    elif case == "2.5s":
        signal = signal[:, :1250]
    elif case == "30min":
        signal, fs = np.tile(resample_poly(signal, 257, 500, axis=1), (1, 180)), 257.0
    elif case == "flat_lead":
        signal[1] = 0.0
    elif case == "reversed_leads":
        signal, leads = signal[::-1], leads[::-1]
    elif case == "unknown_lead_set":
        signal, leads = signal[[1, 10]], ["II", "V5"]
    elif case == "all_zero":
        signal = np.zeros_like(signal)
    header_path = _write_record(tmp_path, "odd", signal, fs, leads)
    header = header_path.read_text()
    recording = scipy.io.loadmat(tmp_path / "odd.mat")["val"]
    if case == "nan_samples":
        recording = recording.astype(np.float64)
        recording[:, 100:400] = np.nan
    model = team_code.load_model(str(trained), helper_code.sort_leads(leads))
    if case == "all_zero":  # nothing to classify: an error, not a confident answer
        with pytest.raises(ValueError, match="no usable signal"):
            team_code.run_model(model, header, recording)
        return
    _check_outputs(*team_code.run_model(model, header, recording), model)


def test_reversed_lead_order_gives_the_same_answer(trained: Path, cinc_dir: Path, tmp_path: Path):
    signal, fs = _real_signal(cinc_dir)
    forward = _write_record(tmp_path, "fwd", signal, fs, TWELVE_LEADS)
    (tmp_path / "rev").mkdir()
    backward = _write_record(tmp_path / "rev", "fwd", signal[::-1], fs, TWELVE_LEADS[::-1])
    model = team_code.load_model(str(trained), TWELVE_LEADS)
    a = team_code.run_model(model, forward.read_text(), scipy.io.loadmat(forward.with_suffix(".mat"))["val"])[2]
    b = team_code.run_model(model, backward.read_text(), scipy.io.loadmat(backward.with_suffix(".mat"))["val"])[2]
    np.testing.assert_allclose(a, b, atol=1e-6)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file() and path.name != ".lock"}


def test_interrupted_training_leaves_the_old_model_as_it_was(
    data_dir: Path, trained: Path, tmp_path: Path, monkeypatch
):
    import ecgtrain.workflow as workflow

    folder = tmp_path / "model"
    shutil.copytree(trained, folder)  # a finished earlier run in the same folder
    before = _snapshot(folder)
    real_train = workflow.train_lead_set
    calls = {"n": 0}

    def dies_on_second_lead_set(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(workflow, "train_lead_set", dies_on_second_lead_set)
    settings = tiny_settings(tmp_path, lead_sets=(("I", "II"), ("I", "II", "V2")), seed=3)
    with pytest.raises(KeyboardInterrupt):
        train_all(data_dir, folder, settings)
    assert _snapshot(folder) == before and not list(folder.glob(".partial-*"))
    assert team_code.load_model(str(folder), ("I", "II", "V2")).leads == ("I", "II", "V2")
    # A first training that fails leaves no model folder at all.
    calls["n"] = 1
    with pytest.raises(KeyboardInterrupt):
        train_all(data_dir, tmp_path / "new", settings)
    assert not (tmp_path / "new").exists()


def _edit_manifest(folder: Path, keep: list[str], planned: list[list[str]], complete: bool | None) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["models"] = {key: manifest["models"][key] for key in keep}
    manifest["settings"]["lead_sets"] = planned
    manifest.pop("complete")
    if complete is not None:
        manifest["complete"] = complete
    model_folder.write_manifest(folder, manifest)  # sealed again: the checks behind it are tested


@pytest.mark.parametrize("style", ["old format", "marked incomplete"])
def test_interrupted_folder_serves_only_its_lead_sets(trained: Path, tmp_path: Path, caplog, style: str):
    """A folder whose training did not finish (an old-format folder, or a hand-edited manifest) says so
    and refuses the lead sets it lacks instead of running another network on zero-filled leads."""
    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    _edit_manifest(folder, ["I-II"], [["I", "II"], ["I", "II", "V2"]], None if style == "old format" else False)
    with caplog.at_level(logging.WARNING):
        assert team_code.load_model(str(folder), ("I", "II")).leads == ("I", "II")
    assert "serves only the lead sets I-II" in caplog.text
    with pytest.raises(model_folder.ModelFolderError, match="no network for leads I-II-V2"):
        team_code.load_model(str(folder), ("I", "II", "V2"))


def test_complete_folder_falls_back_and_says_what_happens_to_the_leads(trained: Path, tmp_path: Path, caplog):
    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    _edit_manifest(folder, ["I-II"], [["I", "II"]], True)
    with caplog.at_level(logging.WARNING):
        model = team_code.load_model(str(folder), TWELVE_LEADS)
    assert model.leads == ("I", "II")
    assert "are dropped" in caplog.text and "zero-filled" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert team_code.load_model(str(trained), ("I", "II", "V5")).leads == TWELVE_LEADS
    assert "zero-filled" in caplog.text and "dropped" not in caplog.text


def test_load_model_applies_the_thread_setting(trained: Path, monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("ECG_THREADS", "1")
    try:
        torch.set_num_threads(2)
        team_code.load_model(str(trained), ("I", "II"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_load_model_errors_name_the_folder(tmp_path: Path):
    with pytest.raises(model_folder.ModelFolderError, match=str(tmp_path / "missing")):
        team_code.load_model(str(tmp_path / "missing"), ("I", "II"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(model_folder.ModelFolderError, match="no manifest.json"):
        team_code.load_model(str(tmp_path / "empty"), ("I", "II"))
