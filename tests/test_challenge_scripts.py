"""train_model.py and test_model.py: the Challenge CLI contract, and bad records that never stop a run.

team_code is replaced by injected functions (or a stand-in module), so these tests check the
scripts alone. Bad-input fixtures are copies of real records, damaged in tmp_path.
"""

from __future__ import annotations

import errno
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import helper_code as hc

ROOT = Path(__file__).resolve().parents[1]
GOOD = ["E07500", "E07501", "JS20000"]
CLASSES = ["164889003", "426783006"]


def _load_script(name: str) -> types.ModuleType:
    """Import a root script by path (a test module may be called test_model too)."""
    spec = importlib.util.spec_from_file_location(f"challenge_{name}", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


tester = _load_script("test_model")
trainer = _load_script("train_model")


def _copy(cinc_dir: Path, data: Path, name: str, suffixes: tuple[str, ...] = (".hea", ".mat")) -> None:
    for suffix in suffixes:
        shutil.copy(cinc_dir / f"{name}{suffix}", data / f"{name}{suffix}")


def _two_lead_copy(cinc_dir: Path, data: Path, name: str) -> None:
    """A 2-lead record with its leads in the order II, I (so the sorted set differs from header order)."""
    lines = (cinc_dir / f"{name}.hea").read_text().splitlines()
    values = hc.load_recording(str(cinc_dir / f"{name}.mat"))
    header = [lines[0].replace(" 12 ", " 2 ", 1), lines[2], lines[1]] + [line for line in lines if line.startswith("#")]
    (data / f"{name}.hea").write_text("\n".join(header) + "\n")
    scipy.io.savemat(str(data / f"{name}.mat"), {"val": values[[1, 0]]}, format="4")


@pytest.fixture()
def data(cinc_dir: Path, tmp_path: Path) -> Path:
    """Good records, one 2-lead record, and one record for each kind of damage."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in GOOD + ["E07507"]:
        _copy(cinc_dir, folder, name)
    _two_lead_copy(cinc_dir, folder, "E07508")
    _copy(cinc_dir, folder, "E07502", (".hea",))  # missing .mat
    _copy(cinc_dir, folder, "E07503")
    (folder / "E07503.mat").write_bytes((cinc_dir / "E07503.mat").read_bytes()[:3000])  # truncated .mat
    _copy(cinc_dir, folder, "E07504")
    text = (folder / "E07504.hea").read_text()
    (folder / "E07504.hea").write_text(text.replace("E07504 12 500", "E07504 13 500", 1))  # declares 13 leads
    _copy(cinc_dir, folder, "E07505")
    text = (folder / "E07505.hea").read_text()
    (folder / "E07505.hea").write_text(text.replace("E07505 12 500", "E07505 12 5OO", 1))  # non-numeric fs
    _copy(cinc_dir, folder, "E07506", (".hea",))
    values = hc.load_recording(str(cinc_dir / "E07506.mat"))
    scipy.io.savemat(str(folder / "E07506.mat"), {"ecg": values}, format="4")  # wrong key
    return folder


BAD = {
    "E07502": "signal file is missing",
    "E07503": "E07503.mat",
    "E07504": "declares 13 leads but lists 12",
    "E07505": "sampling frequency is not a number",
    "E07506": "no variable 'val'",
    "E07507": "RuntimeError: model exploded",
}


class FakeTeam:
    """Stand-in for team_code: records its calls, fails on E07507."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str, tuple[str, ...]]] = []
        self.ran: list[tuple[str, tuple[int, int], np.dtype]] = []

    def load_model(self, model_directory: str, leads) -> dict:
        self.loaded.append((model_directory, tuple(leads)))
        return {"leads": tuple(leads)}

    def run_model(self, model: dict, header: str, recording: np.ndarray):
        record = hc.get_recording_id(header)
        if record == "E07507":
            raise RuntimeError("model exploded")
        assert hc.sort_leads(hc.get_leads(header)) == model["leads"]
        self.ran.append((record, recording.shape, recording.dtype))
        return CLASSES, [1, 0], [0.75, float(recording.shape[0])]


def test_one_output_per_record_and_bad_records_isolated(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    team = FakeTeam()
    outputs = tmp_path / "outputs"
    with caplog.at_level(logging.ERROR):
        summary = tester.run_folder(
            str(tmp_path / "model"), str(data), str(outputs), team.load_model, team.run_model, show_progress=False
        )
    headers = sorted(p.stem for p in data.glob("*.hea"))
    assert sorted(p.stem for p in outputs.glob("*.csv")) == headers and len(headers) == 10
    # load_model once per sorted lead set present (2-lead record written II, I).
    assert sorted(leads for _, leads in team.loaded) == [("I", "II"), hc.twelve_leads]
    assert {directory for directory, _ in team.loaded} == {str(tmp_path / "model")}
    # run_model saw raw int16 recordings in header lead order.
    assert sorted(team.ran) == sorted(
        [(n, (12, 5000), np.dtype(np.int16)) for n in GOOD] + [("E07508", (2, 5000), np.dtype(np.int16))]
    )
    for name in GOOD + ["E07508"]:
        assert (outputs / f"{name}.csv").read_text().startswith(f"#{name}\n164889003,426783006\n1,0\n0.75,")
    for name, problem in BAD.items():
        assert (outputs / f"{name}.csv").read_bytes() == f"#{name}\n\n\n\n".encode()
        assert any(name in message and problem in message for message in caplog.messages), (name, caplog.messages)
    assert summary.records == 10 and sorted(Path(f).stem for f, _ in summary.failures) == sorted(BAD)
    line = summary.line()
    assert line.startswith("Done: 10 records, 6 failed, ") and " s " in line


def test_failing_load_model_fails_only_its_records(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    team = FakeTeam()

    def load_model(model_directory: str, leads):
        if len(leads) == 2:
            raise FileNotFoundError("no model_I-II.sav")
        return team.load_model(model_directory, leads)

    with caplog.at_level(logging.ERROR):
        summary = tester.run_folder(
            "model", str(data), str(tmp_path / "out"), load_model, team.run_model, show_progress=False
        )
    assert (tmp_path / "out" / "E07508.csv").read_text() == "#E07508\n\n\n\n"
    assert "E07508" in {Path(f).stem for f, _ in summary.failures} and len(summary.failures) == 7
    assert any("no model_I-II.sav" in message for message in caplog.messages)
    assert sorted(n for n, _, _ in team.ran) == sorted(GOOD)


def test_main_imports_team_code_only_when_run(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    team = FakeTeam()
    trained: list[tuple[str, str]] = []
    module = types.ModuleType("team_code")
    module.load_model, module.run_model = team.load_model, team.run_model

    def training_code(data_directory: str, model_directory: str) -> None:  # as the official template's does
        os.makedirs(model_directory, exist_ok=True)
        trained.append((data_directory, model_directory))

    module.training_code = training_code
    monkeypatch.setitem(sys.modules, "team_code", module)
    assert trainer.main([str(data), str(tmp_path / "model")]) == 0
    assert trained == [(str(data), str(tmp_path / "model"))] and (tmp_path / "model").is_dir()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("Done: trained on 9 records in ")
    (tmp_path / "model" / "model.sav").write_bytes(b"weights")  # the stand-in training wrote nothing
    assert tester.main([str(tmp_path / "model"), str(data), str(tmp_path / "out"), "-q"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("Done: 10 records, 6 failed")
    assert len(list((tmp_path / "out").glob("*.csv"))) == 10


def test_scripts_do_not_need_team_code(tmp_path: Path) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import helper_code, evaluate_model, extract_leads_wfdb, train_model, test_model; "
        "print('team_code' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "script, args",
    [
        ("test_model.py", ["model", "data"]),
        ("test_model.py", ["a", "b", "c", "d"]),
        ("train_model.py", ["data"]),
        ("train_model.py", []),
    ],
)
def test_usage_errors(script: str, args: list[str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: python " + script in result.stderr


def test_training_checks_the_data_folder(tmp_path: Path) -> None:
    calls: list[tuple[str, str]] = []
    with pytest.raises(FileNotFoundError, match="not found"):
        trainer.run_training(str(tmp_path / "absent"), str(tmp_path / "model"), lambda d, m: calls.append((d, m)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no records"):
        trainer.run_training(str(tmp_path / "empty"), str(tmp_path / "model"), lambda d, m: calls.append((d, m)))
    assert calls == []


def test_testing_needs_records(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no header files"):
        tester.run_folder(
            "model",
            str(tmp_path),
            str(tmp_path / "out"),
            FakeTeam().load_model,
            FakeTeam().run_model,
            show_progress=False,
        )


# ---------------------------------------------------------------------------------------------
# Fail fast, subfolders, locking, unwritable outputs
# ---------------------------------------------------------------------------------------------
def _run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=cwd)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_missing_or_empty_model_folder_fails_before_any_record(data: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for model, problem in ((tmp_path / "absent", "model folder not found"), (tmp_path / "empty", "is empty")):
        result = _run_script("test_model.py", str(model), str(data), str(tmp_path / "out"), "-q", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert len(_error_lines(result.stderr)) == 1 and problem in result.stderr and str(model) in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.csv"))


def test_broken_manifest_fails_fast(data: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text("{not json")
    result = _run_script("test_model.py", str(model), str(data), str(tmp_path / "out"), "-q", cwd=tmp_path)
    assert result.returncode == 2 and "unreadable manifest" in result.stderr and "Traceback" not in result.stderr


def test_missing_or_empty_data_folder_is_one_error_line(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.sav").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    for folder, problem in ((tmp_path / "absent", "data folder not found"), (tmp_path / "empty", "no header files")):
        result = _run_script("test_model.py", str(model), str(folder), str(tmp_path / "out"), "-q", cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = _error_lines(result.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"error: {folder}: {problem}")


def test_records_in_subfolders_get_outputs_in_the_same_subfolders(cinc_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for folder, name in (("g1", "E07500"), ("g2/deep", "E07501"), (".", "JS20000")):
        (data / folder).mkdir(parents=True, exist_ok=True)
        _copy(cinc_dir, data / folder, name)
    team = FakeTeam()
    summary = tester.run_folder("m", str(data), str(tmp_path / "out"), team.load_model, team.run_model, False)
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.csv"))
    assert written == ["JS20000.csv", "g1/E07500.csv", "g2/deep/E07501.csv"]
    assert summary.records == 3 and not summary.failures
    assert (tmp_path / "out" / "g2" / "deep" / "E07501.csv").read_text().startswith("#E07501\n164889003,")


def test_second_run_into_the_same_outputs_fails_at_once(data: Path, tmp_path: Path) -> None:
    import fcntl

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.sav").write_bytes(b"x")
    outputs = tmp_path / "out"
    outputs.mkdir()
    with open(outputs / ".lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # a first run, still going
        result = _run_script("test_model.py", str(model), str(data), str(outputs), "-q", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert _error_lines(result.stderr) and "another test_model run" in result.stderr
    assert not list(outputs.glob("*.csv"))
    team = FakeTeam()  # once the first run is over, the folder is free again
    summary = tester.run_folder(str(model), str(data), str(outputs), team.load_model, team.run_model, False)
    assert summary.records == 10


FULL_DISK_RUN = """
import importlib.util, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
root, data, out = sys.argv[1:4]
sys.path.insert(0, root)
spec = importlib.util.spec_from_file_location("tm", root + "/test_model.py")
tm = importlib.util.module_from_spec(spec)
sys.modules["tm"] = tm
spec.loader.exec_module(tm)
resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))  # no file over 300 bytes: a disk that fills up

def run_model(model, header, recording):
    count = 100 if header.startswith("E07501") else 2  # E07501's output does not fit
    return [str(10**8 + i) for i in range(count)], [0] * count, [0.5] * count

summary = tm.run_folder("m", data, out, lambda d, leads: None, run_model, show_progress=False)
print(summary.line())
print(len(summary.unwritten), len(summary.failures))
"""


def test_full_disk_fails_only_that_record_and_leaves_no_partial_file(cinc_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in GOOD:
        _copy(cinc_dir, data, name)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK_RUN, str(ROOT), str(data), str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1 1"
    assert "E07501.csv" in result.stderr and "cannot write output" in result.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["E07500.csv", "JS20000.csv"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    for name in ("E07500", "JS20000"):
        assert (out / f"{name}.csv").read_text() == f"#{name}\n100000000,100000001\n0,0\n0.5,0.5\n"


@pytest.mark.parametrize("script", ["train_model.py", "test_model.py"])
def test_help_names_the_environment_settings(script: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in ("ECG_SETTINGS", "ECG_THREADS", "ECG_DEVICE", "ECG_MAX_SAMPLES"):
        assert name in result.stdout


def _dummy_model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model.sav").write_bytes(b"x")
    return model


def test_unusable_outputs_folder_is_one_error_line(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    model = _dummy_model(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    result = _run_script("test_model.py", str(model), str(data), str(tmp_path / "file"), "-q", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert _error_lines(result.stderr) == [
        f"error: {tmp_path / 'file'}: cannot create or write the outputs folder (File exists)"
    ]

    def read_only(path, *args, **kwargs):  # what a read-only file system answers
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(os, "makedirs", read_only)
    assert tester.main([str(model), str(data), str(tmp_path / "ro"), "-q"]) == 2
    assert _error_lines(capsys.readouterr().err) == [
        f"error: {tmp_path / 'ro'}: cannot create or write the outputs folder (Read-only file system)"
    ]


INTERRUPTED_RUN = """
import importlib.util, os, signal, sys, types
root, model, data, out = sys.argv[1:5]
sys.path.insert(0, root)
spec = importlib.util.spec_from_file_location("tm", root + "/test_model.py")
tm = importlib.util.module_from_spec(spec)
sys.modules["tm"] = tm
spec.loader.exec_module(tm)
ran = []

def run_model(model, header, recording):
    ran.append(header)
    if len(ran) == 3:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the third record runs
    return ["164889003"], [1], [0.5]

sys.modules["team_code"] = types.SimpleNamespace(load_model=lambda d, leads: None, run_model=run_model)
sys.exit(tm.main([model, data, out, "-q"]))
"""


def test_ctrl_c_is_one_line_and_status_130(data: Path, tmp_path: Path) -> None:
    model = _dummy_model(tmp_path)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_RUN, str(ROOT), str(model), str(data), str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 130 and "Traceback" not in result.stderr, result.stderr
    written = sorted(out.glob("*.csv"))
    assert _error_lines(result.stderr) == [
        f"error: interrupted; the output files written so far in {out} are complete, the other records have none"
    ]
    assert 1 <= len(written) < 10 and not list(out.glob(".*.tmp"))
    for path in written:
        assert path.read_text().startswith(f"#{path.stem}\n")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("killed first training", "model folder holds no model, only hidden files"),
        ("ECG_MAX_SAMPLES=lots", "ECG_MAX_SAMPLES='lots' is not a number"),
        ("ECG_MAX_SAMPLES=inf", "ECG_MAX_SAMPLES='inf' is not a number"),
        ("ECG_MAX_SAMPLES=-5", "ECG_MAX_SAMPLES='-5' must be positive"),
    ],
)
def test_unusable_model_folder_or_limit_stops_at_once(data: Path, tmp_path: Path, case: str, expected: str) -> None:
    model, env = tmp_path / "model", dict(os.environ)
    if case == "killed first training":  # what a first training killed before its commit leaves
        (model / ".partial-12345").mkdir(parents=True)
        (model / ".partial-12345" / "model_I-II.0123456789ab.pt").write_bytes(b"half")
        (model / ".lock").write_text("12345")
    else:
        _dummy_model(tmp_path)
        env["ECG_MAX_SAMPLES"] = case.split("=", 1)[1]
    result = subprocess.run(
        [sys.executable, str(ROOT / "test_model.py"), str(model), str(data), str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not list((tmp_path / "out").rglob("*.csv"))
