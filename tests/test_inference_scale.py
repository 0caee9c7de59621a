"""Inference at scale: records prepared in worker processes and classified in batches give the outputs of
the record-by-record path, on real Challenge records of different lengths, rates and lead orders."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from conftest import copy_records

import team_code
from ecgdata.challenge_format import write_challenge_record
from ecgio.header import parse_header
from ecgio.leads import TWELVE_LEADS
from ecgio.record import load_raw, read_header, read_record
from ecgserve import folder_run
from ecgserve.prepare_workers import PrepareWorkers
from ecgserve.record_inputs import RecordPreparer, prepare_file, prepare_input
from ecgtrain.settings import Settings
from ecgtrain.workflow import train_all
from helper_code import load_outputs

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "epochs": 2,
    "batch_size": 8,
    "n_jobs": 1,
    "folds": 2,  # an ensemble of two networks per lead set, as the default model has three
    "progress": False,
    "model_kwargs": {"raw_widths": [8, 12], "fiducial_widths": [4, 8], "rnn_hidden": 8, "tabular_hidden": 8},
}


def _load_test_model() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("challenge_test_model_scale", ROOT / "test_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tester = _load_test_model()


@pytest.fixture(scope="module")
def model_dir(cinc_dir: Path, tmp_path_factory) -> Path:
    """The 12-lead and 2-lead networks (2-fold ensembles of a tiny network) trained on the 25 real records."""
    work = tmp_path_factory.mktemp("scale_model")
    settings = replace(Settings.from_dict(TINY), cache_dir=str(work / "cache"), lead_sets=(TWELVE_LEADS, ("I", "II")))
    train_all(cinc_dir, work / "model", settings)
    return work / "model"


def _variant(cinc_dir: Path, out: Path, name: str, new_name: str, leads=None, seconds=None, fs=None) -> Path:
    """A real record rewritten: leads in another order (or a subset), cut or tiled to ``seconds``, resampled."""
    record = read_record(cinc_dir / f"{name}.hea")
    signal, rate = record.signal, record.fs
    if seconds is not None:
        wanted = int(seconds * rate)
        signal = np.tile(signal, (1, -(-wanted // signal.shape[1])))[:, :wanted]
    if fs is not None:
        signal = scipy.signal.resample_poly(signal, int(fs), int(rate), axis=1)
        rate = fs
    leads = leads or record.leads
    rows = [record.leads.index(lead) for lead in leads]
    return write_challenge_record(out, new_name, signal[rows], rate, leads, record.age, record.sex, record.labels)


@pytest.fixture(scope="module")
def mixed_dir(cinc_dir: Path, tmp_path_factory) -> Path:
    """The 25 real records, their variants (3 s to 100 s, 257 and 1000 Hz, leads in reverse order, 2-lead), a
    subfolder, and records that cannot be classified (missing signal, truncated file, 0.5 s long)."""
    data = copy_records(cinc_dir, tmp_path_factory.mktemp("mixed"))
    _variant(cinc_dir, data, "E07501", "V_short", seconds=3)
    _variant(cinc_dir, data, "E07502", "V_40s", seconds=40)
    _variant(cinc_dir, data / "sub", "E07503", "V_100s", seconds=100)
    _variant(cinc_dir, data, "HR06000", "V_257hz", seconds=47, fs=257)
    _variant(cinc_dir, data, "JS20000", "V_1000hz", fs=1000)
    _variant(cinc_dir, data, "JS20001", "V_reversed", leads=tuple(reversed(TWELVE_LEADS)))
    _variant(cinc_dir, data, "JS20002", "V_two", leads=("II", "I"))
    _variant(cinc_dir, data / "sub", "E07504", "V_two_long", leads=("I", "II"), seconds=65)
    _variant(cinc_dir, data, "E07505", "V_half_second", seconds=0.5)
    shutil.copy(cinc_dir / "E07506.hea", data / "X_no_signal.hea")
    (data / "X_no_signal.hea").write_text((data / "X_no_signal.hea").read_text().replace("E07506", "X_no_signal"))
    truncated = _variant(cinc_dir, data, "E07507", "X_truncated")
    truncated.with_suffix(".mat").write_bytes(truncated.with_suffix(".mat").read_bytes()[:2000])
    return data


def _inputs(model, headers: list[Path]) -> list:
    return [prepare_input(model.preparer, h.read_text(), load_raw(h)[0]) for h in headers]


def test_batched_probabilities_equal_one_record_at_a_time(model_dir: Path, mixed_dir: Path) -> None:
    model = team_code.load_model(str(model_dir), TWELVE_LEADS)
    headers = sorted(mixed_dir.glob("*.hea")) + sorted((mixed_dir / "sub").glob("*.hea"))
    headers = [h for h in headers if len(read_header(h).leads) == 12 and not h.stem.startswith(("X_", "V_half"))]
    items = _inputs(model, headers)
    assert {len(windows) for windows, _, _ in items} >= {1, 4, 8}  # 3 s to 100 s: one window to the maximum
    one_by_one = np.stack([team_code.run_model(model, h.read_text(), load_raw(h)[0])[2] for h in headers])
    sizes: list[int] = []
    model.network.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    for batch in (1, 3, 16, 200):
        sizes.clear()
        batched = model.probabilities_batch(items, batch)
        assert batched.shape == (len(headers), 26) and batched.dtype == np.float32
        np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-5)
        most = max(len(w) for w, _, _ in items)
        assert sum(sizes) == sum(len(w) for w, _, _ in items) and max(sizes) < batch + most  # memory stays bounded
        if batch == 1:  # each record alone: exactly run_model's numbers
            assert np.array_equal(batched, one_by_one)
    assert model.probabilities_batch([], 16).shape == (0, 26)


def test_the_same_record_in_any_lead_order_gets_the_same_input(model_dir: Path, mixed_dir: Path, cinc_dir) -> None:
    model = team_code.load_model(str(model_dir), TWELVE_LEADS)
    original, reversed_ = _inputs(model, [cinc_dir / "JS20001.hea", mixed_dir / "V_reversed.hea"])
    for a, b in zip(original, reversed_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_preparation_fails_as_run_model_fails(model_dir: Path, mixed_dir: Path) -> None:
    """Same checks, same messages: a record is refused the same way on either path."""
    model = team_code.load_model(str(model_dir), TWELVE_LEADS)
    header = mixed_dir / "E07500.hea"
    text, recording = header.read_text(), load_raw(header)[0]
    for bad_text, bad_recording in (
        (text, recording[:, :200]),  # 0.4 s
        (text, recording[:5]),  # fewer leads than the header lists
        (text.replace("E07500 12 500", "E07500 12 20", 1), recording),  # 20 Hz
        (text, np.zeros_like(recording)),  # no usable lead
    ):
        with pytest.raises(ValueError) as expected:
            team_code.run_model(model, bad_text, bad_recording)
        with pytest.raises(ValueError) as got:
            prepare_input(model.preparer, bad_text, bad_recording)
        assert type(got.value) is type(expected.value) and str(got.value) == str(expected.value)
        assert str(got.value).startswith("E07500")
    no_signal = mixed_dir / "X_no_signal.hea"
    item, reason = prepare_file(str(no_signal), no_signal.read_text(), model.preparer)
    assert item is None and "X_no_signal.mat: signal file is missing" in reason


def _run(model_dir: Path, data: Path, out: Path, *options: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "ECG_THREADS": "1", **(env or {})}
    command = [sys.executable, str(ROOT / "test_model.py"), str(model_dir), str(data), str(out), "-q", *options]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT, timeout=600)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.csv"))}


def test_workers_and_batches_write_the_files_of_the_one_process_run(
    model_dir: Path, mixed_dir: Path, tmp_path: Path
) -> None:
    one = _run(model_dir, mixed_dir, tmp_path / "one", "--workers", "1", "--batch", "16")
    two = _run(model_dir, mixed_dir, tmp_path / "two", "--workers", "2", "--batch", "16")
    for run in (one, two):
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[-1].startswith("Done: 36 records, 3 failed, ")
    assert "batched: 2 worker process(es)" in two.stderr and "records/s" in two.stdout
    files = _files(tmp_path / "one")
    assert len(files) == len(list(mixed_dir.rglob("*.hea"))) == 36 and "sub/V_100s.csv" in files
    assert files == _files(tmp_path / "two")  # byte for byte
    for name in ("X_no_signal", "X_truncated", "V_half_second", "V_short"):
        failed = files[f"{name}.csv"] == f"#{name}\n\n\n\n".encode()
        assert failed == (name != "V_short"), name
        assert (name in two.stderr) == failed


def test_batch_one_is_the_record_by_record_loop_and_batches_agree_with_it(
    model_dir: Path, mixed_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECG_THREADS", "1")
    runs = {}
    for key, options in {
        "loop": {},
        "one": {"batched": True, "batch": 1},
        "many": {"batched": True, "batch": 16},
    }.items():
        runs[key] = tester.run_folder(
            str(model_dir),
            str(mixed_dir),
            str(tmp_path / key),
            team_code.load_model,
            team_code.run_model,
            show_progress=False,
            **options,
        )
    assert _files(tmp_path / "one") == _files(tmp_path / "loop")
    assert runs["one"].failures == runs["loop"].failures == runs["many"].failures and len(runs["loop"].failures) == 3
    assert runs["many"].lead_sets == runs["loop"].lead_sets == [TWELVE_LEADS, ("I", "II")]
    for csv in (tmp_path / "loop").rglob("*.csv"):
        expected = load_outputs(str(csv))
        got = load_outputs(str(tmp_path / "many" / csv.relative_to(tmp_path / "loop")))
        assert got[:3] == expected[:3]  # id, classes and labels
        np.testing.assert_allclose(got[3], expected[3], rtol=0, atol=1e-5)


def test_other_team_code_runs_record_by_record(mixed_dir: Path, tmp_path: Path, caplog) -> None:
    """A model that is not our Predictor (the harness case) never goes to the workers."""
    seen: list[str] = []

    def run_model(model, header, recording):
        seen.append(parse_header(header).record_name)
        return ["426783006"], [1], [0.5]

    with caplog.at_level(logging.INFO):
        summary = tester.run_folder(
            "m",
            str(mixed_dir),
            str(tmp_path / "out"),
            lambda d, leads: object(),
            run_model,
            False,
            batched=True,
            workers=2,
        )
    assert len(seen) == 36 - 3 and len(summary.failures) == 3
    assert (tmp_path / "out" / "E07500.csv").read_text() == "#E07500\n426783006\n1\n0.5\n"


def test_workers_from_the_environment(model_dir: Path, cinc_dir: Path, tmp_path: Path) -> None:
    bad = _run(model_dir, cinc_dir, tmp_path / "bad", env={"ECG_WORKERS": "two"})
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: ECG_WORKERS='two': expected a whole number >= 1, got 'two'"
    ]
    good = _run(model_dir, cinc_dir, tmp_path / "good", env={"ECG_WORKERS": "2"})
    assert good.returncode == 0 and "batched: 2 worker process(es)" in good.stderr
    assert len(list((tmp_path / "good").glob("*.csv"))) == 25
    usage = _run(model_dir, cinc_dir, tmp_path / "usage", "--batch", "0")
    assert usage.returncode == 2 and "--batch: expected a whole number >= 1" in usage.stderr


class DyingPreparer(RecordPreparer):
    """Kills its worker process on one record, as the system's out-of-memory killer would."""

    def prepare(self, signal, fs, age=float("nan"), sex=None):
        if signal.shape[1] == 1234:
            os._exit(9)
        return super().prepare(signal, fs, age, sex)


def test_a_worker_killed_by_a_record_costs_only_that_record(model_dir: Path, cinc_dir: Path, tmp_path: Path) -> None:
    model = team_code.load_model(str(model_dir), TWELVE_LEADS)
    preparer = DyingPreparer(model.preparer.leads, model.preparer.config, model.preparer.scaler)
    killer = _variant(cinc_dir, tmp_path, "E07500", "killer", seconds=1234 / 500)
    headers = [cinc_dir / f"{name}.hea" for name in ("E07501", "E07502", "JS20003")] + [killer]
    headers.insert(2, headers.pop())
    with PrepareWorkers(2) as workers:
        jobs = [workers.submit(str(h), h.read_text(), preparer) for h in headers]
        results = [workers.result(job) for job in jobs]
    for header, (item, reason) in zip(headers, results, strict=True):
        if header == killer:
            assert item is None and reason.startswith(f"{killer}: ") and "died twice" in reason
        else:
            assert item is not None and reason == "", reason
            expected = prepare_input(model.preparer, header.read_text(), load_raw(header)[0])
            np.testing.assert_array_equal(item[0], expected[0])


def test_a_network_failing_on_one_record_of_a_batch_fails_only_that_record() -> None:
    class Fussy:
        """Fails any batch holding the record whose tabular row is NaN, as a network could (out of memory...)."""

        classes = ("a", "b")

        def probabilities_batch(self, items, batch):
            if any(np.isnan(tabular).any() for _, _, tabular in items):
                raise RuntimeError("cannot run this batch")
            return np.full((len(items), 2), 0.25, dtype=np.float32)

        def labels(self, probabilities):
            return (probabilities > 0.5).astype(int)

    model = Fussy()
    records = [folder_run._Record(f"r{i}.hea", f"r{i}", model=model) for i in range(3)]
    items = [(np.zeros((1, 2, 4)), np.zeros((1, 1, 4)), np.full(3, np.nan if i == 1 else 0.0)) for i in range(3)]
    folder_run._classify(list(zip(records, items, strict=True)), 16)
    assert [r.error for r in records] == [None, "RuntimeError: cannot run this batch", None]
    assert records[0].outputs == (["a", "b"], [0, 0], [np.float32(0.25)] * 2) == records[2].outputs
