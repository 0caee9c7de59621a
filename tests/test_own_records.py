"""Your own records: the same shared records written in every format give the same classification as the
WFDB/Challenge original; bad files get a clear error without stopping the batch; the Python API's
examples run; long records are classified in segments."""

from __future__ import annotations

import doctest
import itertools
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import CINC_SAMPLE, PTBXL_SAMPLE
from own_formats import write_all
from test_team_code import TINY

import ecgclassify.api
import ecgclassify.windows
import ecgio.formats
from ecgclassify import Classifier
from ecgclassify.cli import main
from ecgclassify.windows import segment_bounds
from ecgio.errors import RecordError
from ecgio.formats import normalise_lead, open_signal
from ecgio.leads import TWELVE_LEADS
from ecgio.record import read_record
from ecgtrain.settings import Settings
from ecgtrain.workflow import train_all

PTBXL_RECORD = PTBXL_SAMPLE / "records500" / "00000" / "00409_hr.hea"  # WFDB .dat original
CINC_RECORD = CINC_SAMPLE / "E07501.hea"  # Challenge .hea/.mat original
TOLERANCE = 1e-5  # float32 rounding; the formats here hold the samples exactly, so differences are ~0


@pytest.fixture(scope="module")
def model(cinc_dir: Path, tmp_path_factory) -> Path:
    """Tiny 12-lead and I-II networks (3-fold ensembles with boosted trees) trained on the 25 real records."""
    work = tmp_path_factory.mktemp("own_model")
    settings = replace(Settings.from_dict(TINY), cache_dir=str(work / "cache"), lead_sets=(TWELVE_LEADS, ("I", "II")))
    train_all(cinc_dir, work / "model", settings)
    return work / "model"


@pytest.fixture(scope="module")
def classifier(model: Path) -> Classifier:
    return Classifier.load(model)


@pytest.fixture(scope="module", params=["ptbxl", "cinc"])
def converted(request, ptbxl_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    original = PTBXL_RECORD if request.param == "ptbxl" else CINC_RECORD
    if not original.exists():
        pytest.skip(f"{original} not found")
    return original, write_all(original, tmp_path_factory.mktemp(f"formats_{request.param}"))


def test_lead_names_are_normalised():
    assert normalise_lead("avr") == ("aVR", 1.0)
    assert normalise_lead("EKG-V1") == ("V1", 1.0)
    assert normalise_lead("Lead -aVR") == ("aVR", -1.0)
    assert normalise_lead("MLII") == ("II", 1.0)
    assert normalise_lead("SpO2")[0] not in TWELVE_LEADS


def test_every_format_reads_the_same_samples(converted):
    original, files = converted
    record = read_record(original)
    for kind, (path, options) in files.items():
        source = open_signal(path, **options)
        assert source.leads == record.leads and source.fs == record.fs, kind
        np.testing.assert_array_equal(source.read(), record.signal, err_msg=kind)
        stretch = source.read(1234, 2345)  # partial reads agree with the whole
        np.testing.assert_array_equal(stretch, record.signal[:, 1234:2345], err_msg=kind)


def test_every_format_gives_the_original_classification(converted, classifier: Classifier):
    original, files = converted
    reference = classifier.classify_file(original)
    assert len(reference.diagnoses) == 26 and reference.model_leads == TWELVE_LEADS
    record = read_record(original)
    for kind, (path, options) in files.items():
        # not every format carries age and sex (the model reads them): give the original's, as a user would
        result = classifier.classify_file(path, **{"age": record.age, "sex": record.sex, **options})
        np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=TOLERANCE, err_msg=kind)
        assert [d.decision for d in result.diagnoses] == [d.decision for d in reference.diagnoses], kind
        assert result.measurements == pytest.approx(reference.measurements, nan_ok=True), kind


def test_api_matches_run_model(classifier: Classifier, model: Path, cinc_dir: Path):
    """The same probabilities and decisions as the Challenge entry point on the same record."""
    import helper_code
    import team_code

    header = helper_code.load_header(str(CINC_RECORD))
    predictor = team_code.load_model(str(model), TWELVE_LEADS)
    _, labels, probabilities = team_code.run_model(
        predictor, header, helper_code.load_recording(str(CINC_RECORD.with_suffix(".mat")))
    )
    result = classifier.classify_file(CINC_RECORD)
    np.testing.assert_allclose(result.probabilities, probabilities, atol=TOLERANCE)
    assert result.decisions.astype(int).tolist() == list(labels)


def test_lead_subset_gets_the_closest_network_with_a_note(classifier: Classifier, cinc_dir: Path):
    record = read_record(CINC_RECORD)
    rows = [record.leads.index(lead) for lead in ("I", "II", "V2")]
    result = classifier.classify_array(record.signal[rows], record.fs, ["I", "II", "V2"])
    assert result.model_leads == TWELVE_LEADS  # the smallest trained set holding I, II and V2
    note = " ".join(result.notes)
    assert "III-aVR-aVL-aVF-V1-V3-V4-V5-V6 are absent and zero-filled" in note
    two = classifier.classify_array(record.signal[rows], record.fs, ["I", "II", "V2"])
    assert np.array_equal(two.probabilities, result.probabilities)


def test_units_gain_and_odd_rates(classifier: Classifier, cinc_dir: Path):
    record = read_record(CINC_RECORD)
    pair = record.signal[:2]
    mv = classifier.classify_array(pair, record.fs, ["I", "II"])
    assert mv.model_leads == ("I", "II")
    microvolts = classifier.classify_array(pair * 1000.0, record.fs, ["I", "II"], units="uV")
    np.testing.assert_allclose(microvolts.probabilities, mv.probabilities, atol=TOLERANCE)
    adc = np.round(pair * 1000.0 * 2.5).astype(np.int32)  # 2.5 ADC units per µV
    from_adc = classifier.classify_array(adc, record.fs, ["I", "II"], units="uV", gain=2.5)
    np.testing.assert_allclose(from_adc.probabilities, mv.probabilities, atol=1e-3)
    short = classifier.classify_array(pair[:, : int(2.5 * record.fs)], record.fs, ["I", "II"])  # 2.5 s
    assert len(short.diagnoses) == 26 and short.duration_s == 2.5 and np.isfinite(short.probabilities).all()
    from scipy.signal import resample_poly

    for fs, (up, down) in ((128.0, (32, 125)), (257.0, (257, 500)), (1000.0, (2, 1))):
        resampled = resample_poly(pair, up, down, axis=1).astype(np.float32)
        result = classifier.classify_array(resampled, fs, ["I", "II"])
        assert f"resampled from {fs:g} Hz to 250 Hz" in result.notes
        assert result.measurements["heart_rate"] == pytest.approx(mv.measurements["heart_rate"], rel=0.05)
        assert np.abs(result.probabilities - mv.probabilities).max() < 0.2  # same record, another rate


def test_refusals_match_run_model(classifier: Classifier):
    flat = np.zeros((2, 5000), dtype=np.float32)
    with pytest.raises(RecordError, match="no usable signal"):
        classifier.classify_array(flat, 500, ["I", "II"], name="flat")
    with pytest.raises(RecordError, match="0 Hz is outside"):
        classifier.classify_array(np.ones((2, 5000)), 0, ["I", "II"], name="zero_rate")
    with pytest.raises(RecordError, match="shorter than 1 s"):
        classifier.classify_array(np.ones((2, 100)), 500, ["I", "II"], name="short")
    with pytest.raises(RecordError, match="at least two leads"):
        classifier.classify_array(np.ones((1, 5000)), 500, ["II"], name="one")


def _bad_files(folder: Path, cinc_dir: Path) -> dict[str, str]:
    """Each bad input and a fragment of the error it must get."""
    import edfio

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.csv").write_text("")
    rows = "\n".join(f"{i / 500!r},0.1,0.2" for i in range(1000))
    (folder / "text.csv").write_text("time,I,II\n" + rows + "\n2.0,0.1,abc\n")
    (folder / "nan_rows.csv").write_text("time,I,II\n" + rows + "\n2.0,nan,nan\n2.002,,\n")
    (folder / "one_lead.csv").write_text("time,II\n" + "\n".join(f"{i / 500!r},0.1" for i in range(1000)) + "\n")
    edfio.Edf([], annotations=[edfio.EdfAnnotation(0.0, None, "event")]).write(folder / "annotations.edf")
    shutil.copy(cinc_dir / "E07502.mat", folder / "zero_rate.mat")
    header = (cinc_dir / "E07502.hea").read_text().splitlines()
    fields = header[0].split()
    fields[0], fields[2] = "zero_rate", "0"
    (folder / "zero_rate.hea").write_text("\n".join([" ".join(fields), *header[1:]]) + "\n")
    return {
        "empty.csv": "file is empty",
        "text.csv": "line 1002, column 'II' is 'abc', not a number",
        "nan_rows.csv": "line 1002, column 'I' is missing or not a finite number (2 row(s)",
        "one_lead.csv": "1 ECG lead (II); the models need at least two leads",
        "annotations.edf": "no signal channels (the file holds annotations only)",
        "zero_rate.hea": "sampling frequency must be positive, got 0",
    }


def test_bad_files_get_clear_errors_and_the_batch_goes_on(model: Path, cinc_dir: Path, tmp_path: Path, capsys):
    expected = _bad_files(tmp_path / "bad", cinc_dir)
    files = [str(tmp_path / "bad" / name) for name in expected]
    good = str(CINC_RECORD)
    code = main([str(model), *files[:3], good, *files[3:], "--json", str(tmp_path / "out.json"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    for name, problem in expected.items():
        line = next((line for line in captured.err.splitlines() if name in line), "")
        assert problem in line, (name, captured.err)
    assert "1 of 7 files classified, 6 failed" in captured.out
    written = json.loads((tmp_path / "out.json").read_text())
    assert [r["record"] for r in written] == ["E07501"]


def test_zero_rate_npy_is_refused(tmp_path: Path):
    np.save(tmp_path / "x.npy", np.ones((2, 5000), np.float32))
    with pytest.raises(RecordError, match=r"x.npy: sampling frequency 0 Hz"):
        open_signal(tmp_path / "x.npy", fs=0, leads=["I", "II"])


def test_cli_json_csv_and_table(model: Path, converted, tmp_path: Path, capsys):
    original, files = converted
    edf, _ = files["edf"]
    code = main([str(model), str(original), str(edf), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0 and "2 of 2 files classified" in out
    assert "QTc Bazett" in out and "model: the I-II-III-aVR-aVL-aVF-V1-V2-V3-V4-V5-V6 network" in out
    records = json.loads((tmp_path / "r.json").read_text())
    assert [set(r) >= {"record", "model_leads", "notes", "measurements", "diagnoses"} for r in records] == [True, True]
    first = records[0]["diagnoses"][0]
    assert set(first) == {"code", "abbreviation", "name", "probability", "threshold", "decision"}
    assert first["abbreviation"] == "AF" and first["code"] == "164889003" and first["name"] == "atrial fibrillation"
    assert set(records[0]["measurements"]) >= {"heart_rate", "pr_interval", "qrs_duration", "qt_interval",
                                               "qtc_bazett", "qtc_fridericia", "qrs_axis", "p_presence"}  # fmt: skip
    assert main([str(model), str(edf), "--csv", str(tmp_path / "r.csv"), "--quiet"]) == 0
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0].startswith("record,model_leads,code,abbreviation,name,probability,threshold,decision,heart_rate")
    assert len(lines) == 1 + 26


def test_report_writes_figures_and_page(model: Path, tmp_path: Path, capsys, cinc_dir: Path):
    code = main([str(model), str(CINC_RECORD), "--report", str(tmp_path / "report"), "--quiet"])
    assert code == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("<img") == 1 and "E07501" in page and "QTc Bazett" in page
    png = (tmp_path / "report" / "E07501.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_long_record_is_classified_in_segments(classifier: Classifier, cinc_dir: Path, tmp_path: Path):
    """A 65-s two-lead record as a .npy file, classified in 20-s segments: each segment's probabilities are
    those of that stretch classified alone, and the summary lists the segments per class with times."""
    record = read_record(CINC_RECORD)
    signal = np.tile(record.signal[:2], (1, 7))[:, : int(65 * record.fs)]
    signal[:, int(20 * record.fs) : int(40 * record.fs)] = 0.0  # a flat (lead-off) segment
    np.save(tmp_path / "long.npy", signal)
    source = open_signal(tmp_path / "long.npy", fs=record.fs, leads=["I", "II"])
    result = classifier.classify_source(source, long_after_s=30.0, segment_s=20.0)
    assert [(s.start_s, s.stop_s) for s in result.segments] == [(0.0, 20.0), (20.0, 40.0), (40.0, 65.0)]
    assert "no usable signal" in result.segments[1].problem
    assert any("1 of 3 segments had no usable signal" in note for note in result.notes)
    alone = classifier.classify_array(signal[:, int(40 * record.fs) :], record.fs, ["I", "II"])
    np.testing.assert_allclose(result.segments[2].probabilities, alone.probabilities, atol=TOLERANCE)
    good = np.stack([result.segments[0].probabilities, result.segments[2].probabilities])
    np.testing.assert_allclose(result.probabilities, good.mean(axis=0), atol=TOLERANCE)
    summary = {item["label"]: item for item in result.summary}
    for diagnosis in result.diagnoses:
        flags = [bool(s.decisions[result.diagnoses.index(diagnosis)]) for s in (result.segments[0], result.segments[2])]
        if any(flags):
            assert summary[diagnosis.abbreviation]["segments"] == sum(flags)
    assert result.to_dict()["segments"]["count"] == 3


def test_segment_bounds_cover_the_record():
    for samples in (1, 250, 15_000, 15_001, 17_499, 17_500, 1_000_000):
        bounds = segment_bounds(samples, 250.0, 60.0)
        assert bounds[0][0] == 0 and bounds[-1][1] == samples
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert len(bounds) == 1 or all(stop - start >= 2500 for start, stop in bounds)  # no piece under 10 s


def test_doctests(classifier: Classifier, model: Path, cinc_dir: Path):
    """The examples in the docstrings run (the API's on the tiny model and a real record's leads I and II)."""
    record = read_record(CINC_RECORD)
    extra = {"model": model, "example_signal": record.signal[:2]}
    for module in (ecgclassify.api, ecgclassify.windows, ecgio.formats):
        failures, tests = doctest.testmod(module, extraglobs=extra, optionflags=doctest.ELLIPSIS)
        assert tests > 0 and failures == 0, module.__name__
    assert not math.isnan(record.fs)


@pytest.fixture(scope="module")
def exported(model: Path, tmp_path_factory) -> Path:
    from ecgclassify.export import main as export_main

    out = tmp_path_factory.mktemp("export")
    assert export_main([str(model), str(out)]) == 0
    return out


def _shared_records() -> list[Path]:
    return sorted(CINC_SAMPLE.glob("*.hea")) + ([PTBXL_RECORD] if PTBXL_RECORD.exists() else [])


@pytest.mark.parametrize("lead_set", [TWELVE_LEADS, ("I", "II")], ids=["12", "2"])
def test_onnx_runner_matches_the_torch_predictor(exported: Path, model: Path, lead_set, cinc_dir: Path, tmp_path: Path):
    """On every shared record: the runner's probabilities equal Predictor's within float32 tolerance, the
    decisions are the same, and the runner works in a process where torch cannot be imported."""
    import subprocess
    import sys

    from ecgclassify.onnx_runner import ExportedModel
    from ecgserve.predictor import load_predictor

    predictor = load_predictor(model, lead_set, device="cpu")
    runner = ExportedModel(exported).for_leads(lead_set)
    assert runner.leads == predictor.leads
    items, expected = [], []
    for hea in _shared_records():
        record = read_record(hea)
        signal = np.stack([record.signal[record.leads.index(lead)] for lead in predictor.leads])
        item = predictor.preparer.prepare(signal, record.fs, record.age, record.sex)
        reference = predictor.probabilities_batch([item], batch_windows=1)[0]
        got = runner.probabilities(*item)
        np.testing.assert_allclose(got, reference, atol=TOLERANCE, err_msg=hea.name)
        assert np.array_equal(runner.decisions(got), predictor.labels(reference).astype(bool)), hea.name
        items.append(item)
        expected.append(reference)
    assert len(items) >= 25
    np.savez(tmp_path / "inputs.npz", *[array for item in items for array in item])
    script = (
        "import sys, json, numpy as np; sys.modules['torch'] = None; sys.modules['sklearn'] = None\n"
        f"sys.path.insert(0, {str(exported)!r}); import onnx_runner\n"
        f"model = onnx_runner.ExportedModel({str(exported)!r}).for_leads({list(lead_set)!r})\n"
        f"data = np.load({str(tmp_path / 'inputs.npz')!r}); arrays = [data[f'arr_{{i}}'] for i in range(len(data.files))]\n"
        "out = [model.probabilities(*arrays[i:i + 3]).tolist() for i in range(0, len(arrays), 3)]\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout)), np.stack(expected), atol=TOLERANCE)
