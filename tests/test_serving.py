"""Serving apart from training: running a saved model imports nothing of ecgtrain, and each header is
parsed once on every path through test_model."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, train_tiny_model

import ecgio.header
from ecgio.header import HeaderText, parse_header, parsed_header
from ecgserve import folder_run
from helper_code import save_outputs

RECORDS = 6


@pytest.fixture(scope="module")
def tiny_model(cinc_dir: Path, tmp_path_factory) -> Path:
    """A tiny I-II model (networks and trees) trained on the 25 shared Challenge records."""
    return train_tiny_model(cinc_dir, tmp_path_factory.mktemp("serving"))


def _imports(path: Path) -> set[str]:
    """Every module a source file imports, at any depth (function-level imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_serving_package_imports_neither_the_training_package_nor_an_optimiser() -> None:
    # torch itself loads torch.optim on ``import torch``, so whether it is in sys.modules says nothing:
    # what serving must not do is use it, or reach ecgtrain, from any of its modules.
    for path in sorted((ROOT / "ecgserve").glob("*.py")):
        for name in _imports(path):
            assert not name.startswith(("ecgtrain", "torch.optim", "benchmarks")), f"{path.name} imports {name}"


CLASSIFY = """
import json, sys
import team_code
from helper_code import load_header, load_recording, get_leads
header = load_header(sys.argv[2])
model = team_code.load_model(sys.argv[1], get_leads(header))
classes, labels, probabilities = team_code.run_model(model, header, load_recording(sys.argv[2].replace(".hea", ".mat")))
from ecgclassify import Classifier
result = Classifier.load(sys.argv[1]).classify_file(sys.argv[2])
ours = sorted(name for name in sys.modules if name.split(".")[0] in {"ecgtrain", "benchmarks"})
print(json.dumps({"classes": len(classes), "probabilities": [float(p) for p in probabilities], "training": ours}))
"""


def test_loading_a_model_and_classifying_a_record_imports_no_training_module(
    tiny_model: Path, cinc_dir: Path, tmp_path: Path
) -> None:
    header = sorted(cinc_dir.glob("*.hea"))[0]
    two_lead = tmp_path / "two"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "extract_leads_wfdb.py"),
            "-i",
            str(cinc_dir),
            "-o",
            str(two_lead),
            "-l",
            "I",
            "II",
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ECG_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CLASSIFY, str(tiny_model), str(two_lead / header.name)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["classes"] == 26 and all(0.0 <= p <= 1.0 for p in answer["probabilities"])
    assert answer["training"] == []


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace parse_header wherever a loaded module holds it; returns the list each parse appends to."""
    calls: list[str] = []
    original = ecgio.header.parse_header

    def counted(text: str, source: str = "<header>"):
        calls.append(source)
        return original(text, source)

    for module in list(sys.modules.values()):
        if getattr(module, "parse_header", None) is original:
            monkeypatch.setattr(module, "parse_header", counted)
    return calls


@pytest.mark.parametrize("batched", [True, False])
def test_each_header_is_parsed_once_on_the_way_through_test_model(
    tiny_model: Path, cinc_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    import team_code

    data = tmp_path / "data"
    data.mkdir()
    for header in sorted(cinc_dir.glob("*.hea"))[:RECORDS]:
        for suffix in (".hea", ".mat"):
            shutil.copy2(header.with_suffix(suffix), data / header.with_suffix(suffix).name)
    monkeypatch.setenv("ECG_THREADS", "1")
    team_code.load_model(str(tiny_model), ("I", "II"))  # torch and the predictor imported before counting
    calls = _count_parses(monkeypatch)
    summary = folder_run.run_folder(
        str(tiny_model),
        str(data),
        str(tmp_path / "out"),
        team_code.load_model,
        team_code.run_model,
        show_progress=False,
        batched=batched,
        save_outputs=save_outputs,
    )
    assert summary.records == RECORDS and not summary.failures
    assert sorted(Path(source).name for source in calls) == sorted(path.name for path in data.glob("*.hea"))


def test_run_model_parses_the_plain_text_the_official_harness_passes(
    tiny_model: Path, cinc_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import team_code
    from ecgio.record import load_raw, read_header_text

    header_file = sorted(cinc_dir.glob("*.hea"))[0]
    text = read_header_text(str(header_file))
    model = team_code.load_model(str(tiny_model), ("I", "II"))
    recording, _ = load_raw(str(header_file), parse_header(text))
    calls = _count_parses(monkeypatch)
    _, _, from_text = team_code.run_model(model, text, recording)
    assert len(calls) == 1
    _, _, from_parsed = team_code.run_model(model, HeaderText(text, parse_header(text)), recording)
    assert len(calls) == 2  # the one parse made here to build the HeaderText; run_model made none
    np.testing.assert_array_equal(from_text, from_parsed)


def test_header_text_is_a_str_that_keeps_its_parse_across_processes(cinc_dir: Path) -> None:
    import pickle

    text = (sorted(cinc_dir.glob("*.hea"))[0]).read_text()
    carried = HeaderText(text, parse_header(text))
    assert carried == text and isinstance(carried, str)
    copy = pickle.loads(pickle.dumps(carried))
    assert isinstance(copy, HeaderText) and copy == text and repr(copy.parsed) == repr(carried.parsed)
    assert parsed_header(copy) is copy.parsed


def test_a_users_own_models_and_training_in_the_working_folder_do_not_break_test_model(
    tiny_model: Path, cinc_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "training").mkdir(parents=True)
    for module in ("models.py", "training/__init__.py", "scoring.py", "plots.py"):
        (work / module).write_text("raise ImportError('the user\\'s own module was imported')\n")
    data = tmp_path / "data"
    data.mkdir()
    for header in sorted(cinc_dir.glob("*.hea"))[:2]:
        for suffix in (".hea", ".mat"):
            shutil.copy2(header.with_suffix(suffix), data / header.with_suffix(suffix).name)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ECG_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "test_model.py"), str(tiny_model), str(data), str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "out").glob("*.csv")) == ["E07500.csv", "E07501.csv"]
