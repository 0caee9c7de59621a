"""ecgreport on real records: the per-record explanation, training curves, evaluation plots and the HTML page.

One tiny model (12-lead and I-II networks, 2 epochs) is trained once per session on a copy of the 25
real Challenge records; every figure is then drawn from real records and checked for its file, its
size and its content (panels, classes, counts).
"""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_records
from matplotlib.image import imread

import evaluate_model
import helper_code
import models
import team_code
from ecgio import Record, read_record
from ecgio.leads import TWELVE_LEADS
from ecgreport import cli
from ecgreport.evaluation import FIGURES, SOURCE_FIGURES, load_evaluation, sources
from ecgreport.explain import explain_record, shading
from ecgreport.html import build_report
from ecgreport.record import class_index, explain_to_png, measurements, record_figure
from ecgreport.training import read_models, training_to_png
from ecgscore.classes import ABBREVIATIONS, labels_to_targets
from ecgscore.metric import modified_confusion_matrix
from ecgserve.predictor import load_predictor
from ecgsignal.features import FEATURE_NAMES
from ecgtrain.settings import Settings
from ecgtrain.workflow import train_all

TINY = {  # one joint network per lead set: these tests look inside its branches
    "fusion": "joint",
    "epochs": 2,
    "batch_size": 8,
    "n_jobs": 1,
    "progress": False,
    "lead_sets": [list(TWELVE_LEADS), ["I", "II"]],
    "model_kwargs": {
        "raw_widths": [8, 12],
        "fiducial_widths": [4, 8],
        "rnn_hidden": 8,
        "tabular_hidden": 8,
        "head_hidden": 16,
    },
}
RECORD = "E07500"  # Georgia, sinus bradycardia, 12 leads at 500 Hz


@pytest.fixture(scope="session")
def report_data(cinc_dir: Path, tmp_path_factory) -> Path:
    """A copy of the 25 real Challenge records."""
    return copy_records(cinc_dir, tmp_path_factory.mktemp("report_data"))


@pytest.fixture(scope="session")
def tiny_model(report_data: Path, tmp_path_factory) -> Path:
    """Two tiny networks (12 leads, I-II) trained for 2 epochs on the real records (about 10 s)."""
    work = tmp_path_factory.mktemp("report_model")
    settings = replace(Settings.from_dict(TINY), cache_dir=str(work / "cache"))
    train_all(report_data, work / "model", settings)
    return work / "model"


@pytest.fixture(scope="session")
def outputs(tiny_model: Path, report_data: Path, tmp_path_factory) -> Path:
    """Challenge output files of the tiny model for every record (the official harness loop)."""
    out = tmp_path_factory.mktemp("report_outputs")
    header_files, recording_files = helper_code.find_challenge_files(str(report_data))
    loaded = {}
    for header_file, recording_file in zip(header_files, recording_files):
        header = helper_code.load_header(header_file)
        leads = helper_code.sort_leads(helper_code.get_leads(header))
        if leads not in loaded:
            loaded[leads] = team_code.load_model(str(tiny_model), leads)
        classes, labels, probabilities = team_code.run_model(
            loaded[leads], header, helper_code.load_recording(recording_file)
        )
        path = out / (Path(header_file).stem + ".csv")
        helper_code.save_outputs(str(path), helper_code.get_recording_id(header), classes, labels, probabilities)
    return out


@pytest.fixture(scope="module")
def record(report_data: Path) -> Record:
    return read_record(report_data / RECORD)


def _png_matches_figure(path: Path, fig) -> np.ndarray:
    """The PNG exists and has the figure's pixel size (matplotlib truncates fractions)."""
    image = imread(path)
    width, height = fig.get_size_inches() * fig.dpi
    assert abs(image.shape[0] - height) < 1 and abs(image.shape[1] - width) < 1
    assert float(np.std(image[..., :3])) > 0.05  # not blank
    return image


# --- why this label ------------------------------------------------------------------------------
def test_attributions_add_up_to_the_logit_change(tiny_model: Path, record: Record) -> None:
    predictor = load_predictor(tiny_model, record.leads)
    explanation = explain_record(predictor, record, steps=64)
    signal = np.stack([record.signal[record.leads.index(lead)] for lead in predictor.leads])
    expected = predictor.probabilities(signal, record.fs, record.age, record.sex)
    np.testing.assert_allclose(explanation.probabilities, expected, atol=1e-5)
    assert explanation.attribution.shape == (12, int(record.num_samples * predictor.config.fs / record.fs))
    assert explanation.uses_signal
    # completeness: the attributions sum to the target logit's change from the flat-line baseline
    change = explanation.logit_change
    assert change != 0
    assert abs(explanation.attribution_total - change) <= 0.05 * abs(change) + 1e-4
    # the default target is the most probable predicted class
    predicted = explanation.predicted
    if predicted.size:
        assert explanation.target in predicted
        assert explanation.probabilities[explanation.target] == explanation.probabilities[predicted].max()


def test_two_lead_network_shades_only_its_leads(tiny_model: Path, record: Record) -> None:
    two = Record(name="two", signal=record.signal[:2], leads=("I", "II"), fs=record.fs, age=record.age)
    predictor = load_predictor(tiny_model, two.leads)
    assert predictor.leads == ("I", "II")
    explanation = explain_record(predictor, two, target=ABBREVIATIONS.index("SB"))
    assert explanation.target == ABBREVIATIONS.index("SB") and explanation.attribution.shape[0] == 2
    shade = shading(explanation, TWELVE_LEADS, record.num_samples, record.fs)
    assert shade.shape == (12, record.num_samples)
    assert shade[:2].max() == pytest.approx(1.0) and shade.min() >= 0
    assert not shade[2:].any()  # leads the network never saw stay unshaded
    table = dict(measurements(explanation, two.sex))
    assert table["QRS axis"].endswith("°")  # from I and II (aVF = II - I/2): ecgsignal.features
    assert table["Heart rate"].endswith("bpm") or table["Heart rate"].endswith("(brady)")


def test_network_without_raw_branch_has_nothing_to_shade(tiny_model: Path, record: Record) -> None:
    predictor = load_predictor(tiny_model, record.leads)
    kwargs = {**read_models(tiny_model)["-".join(TWELVE_LEADS)]["model_kwargs"], "branches": ["fiducial", "tabular"]}
    network = models.build("dual_crnn", **kwargs).eval()
    explanation = explain_record(dataclasses.replace(predictor, network=network), record)
    assert not explanation.uses_signal
    fig = record_figure(explanation, record)
    assert not [image for image in fig.axes[0].images]
    assert "does not use the raw" in " ".join(t.get_text() for t in fig.axes[2].texts)


def test_record_figure_from_the_command_line(tiny_model: Path, report_data: Path, record: Record, tmp_path) -> None:
    out = tmp_path / "record.png"
    assert cli.main(["record", str(tiny_model), str(report_data / RECORD), "-o", str(out), "--dpi", "60"]) == 0
    fig = explain_to_png(tiny_model, report_data / RECORD, dpi=60)
    _png_matches_figure(out, fig)
    paper, classes, text = fig.axes
    # the ECG paper: 13 traces, each shaded where the network looked; marks present
    traces = [line for line in paper.get_lines() if str(line.get_gid()).startswith("trace:")]
    shades = [image for image in paper.images if str(image.get_gid()).startswith("shade:")]
    assert len(traces) == 13 and len(shades) == 13
    assert any(line.get_linestyle() == "None" for line in paper.get_lines())
    # the classes: every header diagnosis that is scored (SB here) is listed and marked (Dx)
    names = [tick.get_text() for tick in classes.get_yticklabels()]
    truth = np.flatnonzero(labels_to_targets(record.labels))
    assert truth.size and all(f"{ABBREVIATIONS[k]}  (Dx)" in names for k in truth)
    assert len(classes.patches) == len(names) >= 12  # one bar per listed class
    highlighted = [t.get_text() for t in classes.get_yticklabels() if t.get_bbox_patch() is not None]
    assert len(highlighted) == 1  # the explained class
    # the measurements as a clinician reads them, with the measured heart rate
    words = " ".join(t.get_text() for t in text.texts)
    for label in ("Heart rate", "PR", "QRS", "QT / QTc (Bazett)", "QTc (Fridericia)", "QRS axis"):
        assert label in words
    predictor = load_predictor(tiny_model, record.leads)
    explanation = explain_record(predictor, record, steps=4)
    hr = explanation.prepared.features[FEATURE_NAMES.index("heart_rate")]
    assert f"{hr:.0f} bpm" in words
    # a class given by name is the one explained
    assert class_index("AF", predictor.classes) == 0 and class_index("59118001", predictor.classes) == 5
    with pytest.raises(ValueError, match="unknown class"):
        class_index("XYZ", predictor.classes)


def test_bad_record_is_a_clear_error(tiny_model: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nothing.hea"
    assert cli.main(["record", str(tiny_model), str(missing), "-o", str(tmp_path / "x.png")]) == 1
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# --- how training went ---------------------------------------------------------------------------
def test_training_curves(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "training.png"
    assert cli.main(["training", str(tiny_model), "-o", str(out), "--dpi", "60"]) == 0
    fig = training_to_png(tiny_model, dpi=60)
    _png_matches_figure(out, fig)
    loss, metric, thresholds = fig.axes
    entries = read_models(tiny_model)
    assert len(entries) == 2
    # one curve per network: a k-fold lead set keeps a history (and a chosen epoch) per fold network
    histories = [
        h for e in entries.values() for h in (e["history"] if isinstance(e["history"][0], list) else [e["history"]])
    ]
    bests = [b for e in entries.values() for b in (e.get("member_best_epochs") or [e["best_epoch"]])]
    assert len(loss.get_lines()) == len(histories) >= 2
    for line, history in zip(loss.get_lines(), histories):
        assert list(line.get_ydata()) == [row["loss"] for row in history]
    rings = [line for line in metric.get_lines() if line.get_markersize() > 10]
    assert [int(line.get_xdata()[0]) for line in rings] == bests
    assert [t.get_text() for t in thresholds.get_xticklabels()] == list(ABBREVIATIONS)
    points = [collection.get_offsets() for collection in thresholds.collections]
    for offsets, entry in zip(points, entries.values()):
        np.testing.assert_allclose(np.asarray(offsets)[:, 1], entry["thresholds"])


def test_training_of_a_folder_without_manifest_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "manifest.json"))):
        read_models(tmp_path)
    (tmp_path / "manifest.json").write_text('{"models": {}}')
    with pytest.raises(ValueError, match="no trained lead sets"):
        read_models(tmp_path)


# --- how each class scores -----------------------------------------------------------------------
def test_evaluate_model_plots_leave_the_scores_identical(report_data: Path, outputs: Path, tmp_path: Path, capsys):
    plain = [str(report_data), str(outputs), str(tmp_path / "a.csv"), str(tmp_path / "a_class.csv")]
    assert evaluate_model.main(plain) == 0
    plain_stdout = capsys.readouterr().out
    plotted = [str(report_data), str(outputs), str(tmp_path / "b.csv"), str(tmp_path / "b_class.csv")]
    assert evaluate_model.main([*plotted, "--plots", str(tmp_path / "plots")]) == 0
    assert capsys.readouterr().out == plain_stdout
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a_class.csv").read_bytes() == (tmp_path / "b_class.csv").read_bytes()
    # the whole set, then each of the three sources of the sample (Georgia, PTB-XL, Ningbo)
    groups = sources(load_evaluation(report_data, outputs).names)
    assert set(groups) == {"Georgia", "PTB-XL", "Ningbo"}
    expected = [tmp_path / "plots" / name for name in FIGURES]
    expected += [tmp_path / "plots" / "by_source" / source / name for source in groups for name in SOURCE_FIGURES]
    assert sorted(tmp_path.joinpath("plots").rglob("*.png")) == sorted(expected)
    for path in expected:
        image = imread(path)
        assert image.shape[0] > 400 and image.shape[1] > 1000
    assert evaluate_model.main([str(report_data), str(outputs), "--plots"]) == 2  # DIR missing: usage


def test_evaluation_figures_show_the_scorer_numbers(report_data: Path, outputs: Path) -> None:
    from ecgreport.evaluation import (
        challenge_matrix_figure,
        class_scores_figure,
        confusion_counts,
        confusion_counts_figure,
        curves_figure,
    )
    from ecgscore.files import evaluate

    data = load_evaluation(report_data, outputs)
    scores = evaluate(report_data, outputs)
    fig = class_scores_figure(data, dpi=50)
    assert len(fig.axes) == 3
    auroc_heights = [bar.get_height() for bar in fig.axes[0].patches]
    np.testing.assert_allclose(auroc_heights, scores.auroc_classes[np.isfinite(scores.auroc_classes)])
    ticks = [t.get_text().split("\n") for t in fig.axes[2].get_xticklabels()]
    assert [name for name, _ in ticks] == list(ABBREVIATIONS)
    assert [int(n) for _, n in ticks] == list(data.labels.sum(axis=0))
    matrix = challenge_matrix_figure(data, dpi=50).axes[0].images[0].get_array()
    np.testing.assert_allclose(np.asarray(matrix), modified_confusion_matrix(data.labels, data.binary))
    counts = confusion_counts(data)
    assert (counts["TP"] + counts["FN"] + counts["FP"] + counts["TN"] == len(data.names)).all()
    bars = confusion_counts_figure(data, dpi=50).axes[0].patches
    assert [bar.get_height() for bar in bars] == [*counts["TP"], *counts["FN"], *counts["FP"]]
    frequent = [k for k in range(26) if 0 < data.labels[:, k].sum() < len(data.names)]
    roc, pr = curves_figure(data, dpi=50).axes[:2]
    assert len(roc.get_lines()) == min(10, len(frequent)) + 1  # plus the chance diagonal
    assert len(pr.get_lines()) == min(10, len(frequent))
    for line in roc.get_lines()[:-1]:
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert x[0] == 0 and y[0] == 0 and x[-1] == 1 and y[-1] == 1 and np.all(np.diff(x) >= 0)


# --- one report ----------------------------------------------------------------------------------
def _report(tiny_model: Path, report_data: Path, outputs: Path) -> str:
    records = [report_data / RECORD, report_data / "missing.hea"]
    return build_report(tiny_model, report_data, outputs, records=records, dpi=40)


@pytest.fixture(scope="module")
def report_html(tiny_model: Path, report_data: Path, outputs: Path) -> str:
    return _report(tiny_model, report_data, outputs)


def test_report_is_self_contained(report_html: str) -> None:
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', report_html)
    assert len(images) == 1 + 4 + 1 == report_html.count("<img")  # training, 4 evaluation, 1 record
    for encoded in images:
        assert base64.b64decode(encoded)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:)', report_html)  # nothing fetched from elsewhere
    assert "missing.hea" in report_html and 'class="error"' in report_html  # a bad record is reported, not fatal
    for source in ("Georgia", "PTB-XL", "Ningbo"):
        assert f"<td>{source}</td>" in report_html


@pytest.mark.slow
def test_report_shows_its_figures_in_chromium(report_html: str, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium installed (Debian package 'chromium')")
    page = tmp_path / "report.html"
    page.write_text(report_html)
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'data-figures-shown="6"' in result.stdout
    assert "6 of 6 figures shown" in result.stdout


def test_html_command(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert cli.main(["html", str(tiny_model), "-o", str(out)]) == 0
    assert out.read_text().count("<img") == 1
    assert cli.main(["html", str(tiny_model), "-o", str(out), "--labels", str(tmp_path)]) == 1


def test_attention_of_the_raw_branch(tiny_model: Path, report_data: Path, record: Record, tmp_path: Path) -> None:
    from ecgreport.explain import attention_weights, network_inputs

    predictor = load_predictor(tiny_model, record.leads)
    explanation = explain_record(predictor, record, method="attention")
    inputs = network_inputs(predictor, explanation.prepared, record.age, record.sex)
    weights = attention_weights(predictor.network, inputs, inputs[0].shape[-1])
    assert weights.shape == (len(explanation.prepared.windows), inputs[0].shape[-1])
    np.testing.assert_allclose(weights.mean(axis=1), 1.0, rtol=1e-3)  # softmax weights, stretched: mean 1
    assert np.all(explanation.attribution == explanation.attribution[:1])  # one time course for every lead
    assert explanation.method == "attention" and explanation.uses_signal
    # a network whose raw branch is absent has no attention over the signal
    kwargs = {**read_models(tiny_model)["-".join(TWELVE_LEADS)]["model_kwargs"], "branches": ["tabular"]}
    bare = dataclasses.replace(predictor, network=models.build("dual_crnn", **kwargs).eval())
    with pytest.raises(ValueError, match="no attention"):
        explain_record(bare, record, method="attention")
    with pytest.raises(ValueError, match="unknown attribution method"):
        explain_record(predictor, record, method="saliency")
    out = tmp_path / "attention.png"
    args = [
        "record",
        str(tiny_model),
        str(report_data / RECORD),
        "-o",
        str(out),
        "--method",
        "attention",
        "--dpi",
        "50",
    ]
    assert cli.main(args) == 0 and imread(out).shape[0] > 300
    fig = record_figure(explanation, record, dpi=50)
    assert not [t for t in fig.axes[1].get_yticklabels() if t.get_bbox_patch() is not None]  # no class singled out
    assert "attention weights" in " ".join(t.get_text() for t in fig.axes[2].texts)
