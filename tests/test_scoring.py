"""The scorer (ecgscore.metric, evaluate_model.py) against hand-computed cases and a naive reference.

The reference below is a second, deliberately straightforward implementation written from the
metric definition in the facts document (loops over recordings, classes and thresholds, files
parsed line by line with the official rules: ``#Dx`` without a space, classes split on ``|``,
the mean of matching columns, ties moved together). The vectorised scorer must agree with it to
every printed digit on randomized outputs for the real Challenge records.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgscore import metric
from ecgscore.classes import WEIGHTS_FILE, read_weights, representative_codes
from ecgscore.files import Scores, evaluate
from ecgscore.metric import (
    ChallengeMetric,
    accuracy,
    auc,
    challenge_metric,
    class_auc,
    f_measure,
    modified_confusion_matrix,
)

ROOT = Path(__file__).resolve().parents[1]
CLASSES, WEIGHTS = read_weights(WEIGHTS_FILE)
CODES = representative_codes()
INDEX = {code: j for j, members in enumerate(CLASSES) for code in members}
NSR = "426783006"


# ---------------------------------------------------------------------------------------------
# The naive reference implementation
# ---------------------------------------------------------------------------------------------
def naive_is_finite_number(entry: str) -> bool:
    try:
        return math.isfinite(float(entry))
    except ValueError:
        return False


def naive_labels(header_files: list[Path]) -> np.ndarray:
    labels = np.zeros((len(header_files), len(CLASSES)), dtype=bool)
    for i, path in enumerate(header_files):
        codes = set()
        for line in path.read_text().split("\n"):
            if line.startswith("#Dx"):
                try:
                    codes.update(entry.strip() for entry in line.split(": ")[1].split(","))
                except IndexError:
                    pass
        for j, members in enumerate(CLASSES):
            if members & codes:
                labels[i, j] = True
    return labels


def naive_outputs(output_files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    binary = np.zeros((len(output_files), len(CLASSES)), dtype=bool)
    scalar = np.zeros((len(output_files), len(CLASSES)))
    for i, path in enumerate(output_files):
        with open(path) as file:
            lines = list(file)
        classes = [set(entry.strip().split("|")) for entry in lines[1].split(",")]
        binaries = [entry.strip() for entry in lines[2].split(",")]
        scalars = [entry.strip() for entry in lines[3].split(",")]
        binaries = [
            1 if (naive_is_finite_number(b) and float(b) == 1) or b in ("True", "true", "T", "t") else 0
            for b in binaries
        ]
        scalars = [float(s) if naive_is_finite_number(s) else 0 for s in scalars]
        for j, members in enumerate(CLASSES):
            b_values, s_values = [], []
            for k, column in enumerate(classes):
                if members & column:
                    b_values.append(binaries[k])
                    s_values.append(scalars[k])
            if b_values:
                binary[i, j] = any(b_values)
                scalar[i, j] = np.mean(s_values)
    return binary, scalar


def naive_auc(labels: np.ndarray, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    num_recordings, num_classes = labels.shape
    auroc, auprc = np.zeros(num_classes), np.zeros(num_classes)
    for k in range(num_classes):
        thresholds = np.unique(outputs[:, k])
        thresholds = np.append(thresholds, thresholds[-1] + 1)[::-1]
        n = len(thresholds)
        tp, fp, fn, tn = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        fn[0] = np.sum(labels[:, k])
        tn[0] = np.sum(~labels[:, k])
        order = np.argsort(outputs[:, k])[::-1]
        i = 0
        for j in range(1, n):
            tp[j], fp[j], fn[j], tn[j] = tp[j - 1], fp[j - 1], fn[j - 1], tn[j - 1]
            while i < num_recordings and outputs[order[i], k] >= thresholds[j]:
                if labels[order[i], k]:
                    tp[j] += 1
                    fn[j] -= 1
                else:
                    fp[j] += 1
                    tn[j] -= 1
                i += 1
        tpr, tnr, ppv = np.zeros(n), np.zeros(n), np.zeros(n)
        for j in range(n):
            tpr[j] = tp[j] / (tp[j] + fn[j]) if tp[j] + fn[j] else float("nan")
            tnr[j] = tn[j] / (tn[j] + fp[j]) if tn[j] + fp[j] else float("nan")
            ppv[j] = tp[j] / (tp[j] + fp[j]) if tp[j] + fp[j] else float("nan")
        for j in range(n - 1):
            auroc[k] += 0.5 * (tpr[j + 1] - tpr[j]) * (tnr[j + 1] + tnr[j])
            auprc[k] += (tpr[j + 1] - tpr[j]) * ppv[j + 1]
    return auroc, auprc


def naive_macro(values: np.ndarray) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.nanmean(values)) if finite else float("nan")


def naive_f_measure(labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    f = np.zeros(labels.shape[1])
    for k in range(labels.shape[1]):
        tp = fp = fn = 0.0
        for i in range(labels.shape[0]):
            if labels[i, k] and outputs[i, k]:
                tp += 1
            elif outputs[i, k]:
                fp += 1
            elif labels[i, k]:
                fn += 1
        f[k] = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan")
    return f


def naive_confusion(labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    num_classes = labels.shape[1]
    matrix = np.zeros((num_classes, num_classes))
    for i in range(labels.shape[0]):
        normalization = float(max(np.sum(labels[i] | outputs[i]), 1))
        for j in range(num_classes):
            if labels[i, j]:
                for k in range(num_classes):
                    if outputs[i, k]:
                        matrix[j, k] += 1.0 / normalization
    return matrix


def naive_challenge_metric(labels: np.ndarray, outputs: np.ndarray) -> float:
    inactive_outputs = np.zeros_like(labels)
    inactive_outputs[:, INDEX[NSR]] = True
    observed = np.nansum(WEIGHTS * naive_confusion(labels, outputs))
    correct = np.nansum(WEIGHTS * naive_confusion(labels, labels))
    inactive = np.nansum(WEIGHTS * naive_confusion(labels, inactive_outputs))
    return 0.0 if correct == inactive else float(observed - inactive) / float(correct - inactive)


def naive_score_text(label_folder: Path, output_folder: Path) -> str:
    headers = sorted(p for p in label_folder.iterdir() if p.suffix == ".hea")
    labels = naive_labels(headers)
    binary, scalar = naive_outputs([output_folder / (p.stem + ".csv") for p in headers])
    auroc, auprc = naive_auc(labels, scalar)
    acc = sum(bool(np.all(labels[i] == binary[i])) for i in range(len(headers))) / len(headers)
    values = (
        naive_macro(auroc),
        naive_macro(auprc),
        acc,
        naive_macro(naive_f_measure(labels, binary)),
        naive_challenge_metric(labels, binary),
    )
    return "AUROC,AUPRC,Accuracy,F-measure,Challenge metric\n" + ",".join(f"{v:.3f}" for v in values)


# ---------------------------------------------------------------------------------------------
# Helpers for making label and output folders
# ---------------------------------------------------------------------------------------------
def write_output(path: Path, record: str, classes: list[str], binary: list[object], probs: list[object]) -> None:
    path.write_text(f"#{record}\n{','.join(classes)}\n{','.join(map(str, binary))}\n{','.join(map(str, probs))}\n")


def write_label(path: Path, codes: list[str], spelling: str = "#Dx: ") -> None:
    path.write_text(f"{path.stem} 12 500 5000\n# Age: 50\n{spelling}{','.join(codes)}\n")


def official_spelling(cinc_dir: Path, target: Path) -> list[Path]:
    """Copies of the real headers written ``#Dx:``/``#Age:``/``#Sex:`` (what the official scorer reads)."""
    target.mkdir()
    copies = []
    for header in sorted(cinc_dir.glob("*.hea")):
        copy = target / header.name
        copy.write_text(
            header.read_text().replace("# Dx:", "#Dx:").replace("# Age:", "#Age:").replace("# Sex:", "#Sex:")
        )
        copies.append(copy)
    return copies


def random_outputs(headers: list[Path], folder: Path, rng: np.random.Generator) -> None:
    """Random output files in every shape the official scorer accepts."""
    folder.mkdir()
    unscored = ["55930002", "164873001", "251120003"]
    for header in headers:
        style = rng.integers(0, 6)
        if style == 0:  # a failed record
            (folder / f"{header.stem}.csv").write_text(f"#{header.stem}\n\n\n\n")
            continue
        classes = list(CODES)
        if style >= 2:  # equivalent codes as separate columns, pipe names, unscored extras
            classes += ["164909002", "59118001", "17338001|427172004"] + unscored
        if style >= 3:  # a class matched by three columns: the mean of three values
            classes += ["713427006|59118001"]
        if style >= 4:
            classes = list(rng.permutation(classes))
        probs = np.round(rng.random(len(classes)), int(rng.integers(1, 3)))  # 1-2 decimals: many ties
        binary: list[object] = [int(p >= 0.5) for p in probs]
        if style == 5:
            binary = [("True" if b else "F") for b in binary]
            probs = probs.astype(object)
            probs[0] = "nan"
        write_output(folder / f"{header.stem}.csv", header.stem, classes, binary, list(probs))


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------
def test_tied_scores_move_together() -> None:
    # positives score 0.8 and 0.5, negatives 0.5 and 0.2: the tie at 0.5 is half credit.
    auroc, auprc = class_auc(np.array([1, 0, 1, 0], bool), np.array([0.5, 0.5, 0.8, 0.2]))
    assert auroc == pytest.approx(0.875)
    assert auprc == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def test_all_scores_tied_gives_chance_auroc() -> None:
    auroc, auprc = class_auc(np.array([1, 0, 0, 1], bool), np.full(4, 0.3))
    assert auroc == pytest.approx(0.5)
    assert auprc == pytest.approx(0.5)


def test_class_without_positives_or_negatives() -> None:
    labels = np.array([[0, 1], [0, 1], [0, 1]], bool)
    scores = np.array([[0.1, 0.2], [0.9, 0.3], [0.5, 0.7]])
    macro_auroc, macro_auprc, auroc, auprc = auc(labels, scores)
    assert math.isnan(auroc[0]) and math.isnan(auprc[0])  # no positives
    assert math.isnan(auroc[1]) and auprc[1] == pytest.approx(1.0)  # no negatives: AUPRC still defined
    assert math.isnan(macro_auroc) and macro_auprc == pytest.approx(1.0)
    f_macro, f_classes = f_measure(labels, np.zeros_like(labels))
    assert math.isnan(f_classes[0]) and f_classes[1] == 0.0 and f_macro == 0.0


def test_f_measure_and_accuracy_by_hand() -> None:
    labels = np.array([[1, 0], [1, 1], [0, 0]], bool)
    outputs = np.array([[1, 0], [0, 1], [1, 0]], bool)
    macro, per_class = f_measure(labels, outputs)
    assert per_class.tolist() == pytest.approx([2 / 4, 1.0])  # class 0: TP1 FP1 FN1; class 1: TP1
    assert macro == pytest.approx(0.75)
    assert accuracy(labels, outputs) == pytest.approx(1 / 3)


def test_challenge_metric_by_hand() -> None:
    af, nsr = INDEX["164889003"], INDEX[NSR]
    labels = np.zeros((2, 26), bool)
    outputs = np.zeros((2, 26), bool)
    labels[0, af] = outputs[0, af] = True  # AF called AF: A[AF, AF] += 1
    labels[1, nsr] = outputs[1, nsr] = outputs[1, af] = True  # n = 2: A[NSR, AF] += .5, A[NSR, NSR] += .5
    observed = 1 + WEIGHTS[nsr, af] * 0.5 + 0.5
    correct = 2.0
    inactive = WEIGHTS[af, nsr] * 0.5 + 1  # AF record answered NSR (n = 2), NSR record answered NSR
    expected = (observed - inactive) / (correct - inactive)
    assert WEIGHTS[nsr, af] == 0.25
    assert challenge_metric(labels, outputs, WEIGHTS, CLASSES) == pytest.approx(expected)
    assert challenge_metric(labels, outputs, WEIGHTS, CLASSES, exact=True) == pytest.approx(expected)
    assert challenge_metric(labels, labels, WEIGHTS, CLASSES) == pytest.approx(1.0)
    inactive_outputs = np.zeros_like(labels)
    inactive_outputs[:, nsr] = True
    assert challenge_metric(labels, inactive_outputs, WEIGHTS, CLASSES) == pytest.approx(0.0)


def test_challenge_metric_degenerate_and_missing_normal_class() -> None:
    labels = np.zeros((3, 26), bool)
    labels[:, INDEX[NSR]] = True  # correct == inactive
    assert challenge_metric(labels, np.ones_like(labels), WEIGHTS, CLASSES) == 0.0
    with pytest.raises(ValueError, match="426783006"):
        challenge_metric(labels[:, :14], labels[:, :14], WEIGHTS[:14, :14], CLASSES[:14])


def test_fast_and_exact_confusion_matrices_agree() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random((2000, 26)) < 0.1
    outputs = rng.random((2000, 26)) < 0.15
    fast = modified_confusion_matrix(labels, outputs, exact=False)
    exact = modified_confusion_matrix(labels, outputs, exact=True)
    assert np.allclose(fast, exact, rtol=1e-12, atol=1e-12)
    assert np.array_equal(exact, naive_confusion(labels, outputs))  # bit-identical to the official loop
    reference = naive_challenge_metric(labels, outputs)
    assert challenge_metric(labels, outputs, WEIGHTS, CLASSES, exact=True) == reference
    metric = ChallengeMetric(labels, WEIGHTS, CLASSES)
    assert metric(outputs) == pytest.approx(reference, abs=1e-12)
    assert metric(labels) == pytest.approx(1.0) and metric(outputs[::-1]) != pytest.approx(reference)


def test_array_metrics_match_naive_on_random_arrays() -> None:
    rng = np.random.default_rng(11)
    labels = rng.random((400, 26)) < rng.random(26) * 0.3
    labels[:, 5] = False  # a class without positives
    binary = rng.random((400, 26)) < 0.2
    scalar = np.round(rng.random((400, 26)), 2)
    macro_auroc, macro_auprc, auroc_classes, auprc_classes = auc(labels, scalar)
    ref_auroc, ref_auprc = naive_auc(labels, scalar)
    assert all(same_float(a, b) for a, b in zip(auroc_classes, ref_auroc))
    assert all(same_float(a, b) for a, b in zip(auprc_classes, ref_auprc))
    assert same_float(macro_auroc, naive_macro(ref_auroc)) and same_float(macro_auprc, naive_macro(ref_auprc))
    assert all(same_float(a, b) for a, b in zip(f_measure(labels, binary)[1], naive_f_measure(labels, binary)))
    assert challenge_metric(labels, binary, WEIGHTS, CLASSES, exact=True) == naive_challenge_metric(labels, binary)


# ---------------------------------------------------------------------------------------------
# Files: parsing rules
# ---------------------------------------------------------------------------------------------
def test_output_parsing_rules(tmp_path: Path) -> None:
    labels, outputs = tmp_path / "labels", tmp_path / "outputs"
    labels.mkdir()
    outputs.mkdir()
    write_label(labels / "A.hea", ["164909002"])  # LBBB
    write_label(labels / "B.hea", ["59118001", NSR], spelling="# Dx: ")  # with a space: still read
    write_label(labels / "C.hea", ["55930002"])  # no scored label
    # A: equivalent codes as two columns (mean, any), an unscored extra, reordered, 'T' for true.
    write_output(
        outputs / "A.csv", "A", ["55930002", "733534002", NSR, "164909002"], ["1", "0", "0", "T"], [0.9, 0.2, 0.1, 0.6]
    )
    # B: a pipe-named class, 'True'/'1.0' binaries, a non-finite probability scored as 0.
    write_output(outputs / "B.csv", "B", ["713427006|59118001", NSR], ["True", "1.0"], ["inf", 0.3])
    (outputs / "C.csv").write_text("#C\n\n\n\n")  # what test_model writes for a failed record
    scores = evaluate(labels, outputs)
    from ecgscore.files import read_output_table

    binary, scalar = read_output_table([str(outputs / f"{r}.csv") for r in "ABC"], CLASSES)
    lbbb, rbbb = INDEX["164909002"], INDEX["59118001"]
    assert binary[0, lbbb] and scalar[0, lbbb] == pytest.approx(0.4)
    assert not binary[0, INDEX[NSR]] and scalar[0, INDEX[NSR]] == pytest.approx(0.1)
    assert binary[1, rbbb] and scalar[1, rbbb] == 0.0
    assert binary[1, INDEX[NSR]] and scalar[1, INDEX[NSR]] == pytest.approx(0.3)
    assert not binary[2].any() and not scalar[2].any()
    assert binary.sum() == 3
    assert isinstance(scores, Scores) and scores.classes[4] == "164909002|733534002"
    # Labels: A LBBB; B RBBB + NSR (read from '# Dx:'); C none. Outputs match A and B exactly.
    assert scores.accuracy == pytest.approx(1.0)
    assert scores.challenge_metric == pytest.approx(1.0)


def test_missing_output_file_is_named(tmp_path: Path) -> None:
    labels, outputs = tmp_path / "labels", tmp_path / "outputs"
    labels.mkdir()
    outputs.mkdir()
    write_label(labels / "A.hea", [NSR])
    write_label(labels / "B.hea", [NSR])
    write_output(outputs / "A.csv", "A", [NSR], [1], [1.0])
    with pytest.raises(IOError, match=r"B\.csv"):
        evaluate(labels, outputs)
    (outputs / "B.csv").write_text("#B\nx\n")  # too short to be an output file
    with pytest.raises(ValueError, match=r"B\.csv"):
        evaluate(labels, outputs)


def test_cli_errors_are_one_line_naming_the_file(tmp_path: Path) -> None:
    labels, outputs = tmp_path / "labels", tmp_path / "outputs"
    labels.mkdir()
    outputs.mkdir()
    write_label(labels / "A.hea", [NSR])
    write_label(labels / "B.hea", [NSR])
    write_output(outputs / "A.csv", "A", [NSR], [1], [1.0])
    script = str(ROOT / "evaluate_model.py")

    def run(*args: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, script, *map(str, args)], capture_output=True, text=True)

    cases = [
        ((tmp_path / "absent", outputs), f"error: {tmp_path / 'absent'}: label folder not found"),
        ((labels, tmp_path / "absent"), f"error: {tmp_path / 'absent'}: output folder not found"),
        ((labels, outputs), f"error: {outputs / 'B.csv'}: output file not found"),
    ]
    for args, expected in cases:
        result = run(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(expected), result.stderr
    (outputs / "B.csv").write_bytes(b"#B\n426783006\n1\n0.9\xe9\n")  # Latin-1 byte: not UTF-8
    result = run(labels, outputs)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {outputs / 'B.csv'}: output file is not UTF-8")
    (outputs / "B.csv").write_text("#B\n426783006\n1\n0.9\n")
    assert run(labels, outputs).returncode == 0


def test_no_label_files(tmp_path: Path) -> None:
    with pytest.raises(IOError, match="No label"):
        evaluate(tmp_path, tmp_path)


# ---------------------------------------------------------------------------------------------
# Real records: agreement with the naive reference to every printed digit
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_random_outputs_on_real_records_match_reference(cinc_dir: Path, tmp_path: Path, seed: int) -> None:
    headers = official_spelling(cinc_dir, tmp_path / "labels")
    random_outputs(headers, tmp_path / "outputs", np.random.default_rng(seed))
    scores = evaluate(tmp_path / "labels", tmp_path / "outputs")
    assert scores.score_text() == naive_score_text(tmp_path / "labels", tmp_path / "outputs")
    labels = naive_labels(headers)
    binary, scalar = naive_outputs([tmp_path / "outputs" / f"{h.stem}.csv" for h in headers])
    ref_auroc, ref_auprc = naive_auc(labels, scalar)
    assert all(same_float(a, b) for a, b in zip(scores.auroc_classes, ref_auroc))
    assert all(same_float(a, b) for a, b in zip(scores.auprc_classes, ref_auprc))
    assert scores.challenge_metric == naive_challenge_metric(labels, binary)


def test_space_spelling_reads_the_same_labels(cinc_dir: Path, tmp_path: Path) -> None:
    headers = official_spelling(cinc_dir, tmp_path / "labels")
    random_outputs(headers, tmp_path / "outputs", np.random.default_rng(99))
    original = evaluate(cinc_dir, tmp_path / "outputs")  # the sample writes '# Dx:'
    assert original.score_text() == evaluate(tmp_path / "labels", tmp_path / "outputs").score_text()
    assert naive_labels(sorted(cinc_dir.glob("*.hea"))).sum() == 0  # the official rule sees nothing there


# ---------------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------------
def test_cli_prints_and_writes_official_text(cinc_dir: Path, tmp_path: Path) -> None:
    headers = official_spelling(cinc_dir, tmp_path / "labels")
    random_outputs(headers, tmp_path / "outputs", np.random.default_rng(5))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()  # weights.csv must be found beside the script, not in the working folder
    script = str(ROOT / "evaluate_model.py")
    env = {**os.environ, "PYTHONPATH": ""}
    printed = subprocess.run(
        [sys.executable, script, str(tmp_path / "labels"), str(tmp_path / "outputs")],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    expected = naive_score_text(tmp_path / "labels", tmp_path / "outputs")
    progress = [
        "Loading weights...",
        "Loading label and output files...",
        "Evaluating model...",
        "- AUROC and AUPRC...",
        "- Accuracy...",
        "- F-measure...",
        "- Challenge metric...",
        "Done.",
    ]
    assert printed == "\n".join(progress) + "\n" + expected + "\n"
    subprocess.run(
        [sys.executable, script, str(tmp_path / "labels"), str(tmp_path / "outputs"), "scores.csv", "class_scores.csv"],
        cwd=elsewhere,
        capture_output=True,
        env=env,
        check=True,
    )
    assert (elsewhere / "scores.csv").read_text() == expected
    class_lines = (elsewhere / "class_scores.csv").read_text().split("\n")
    assert [line.split(",")[0] for line in class_lines] == ["Classes", "AUROC", "AUPRC", "F-measure"]
    assert class_lines[0].split(",")[5] == "164909002|733534002"
    assert all(len(line.split(",")) == 27 for line in class_lines)
    assert all(
        value == "nan" or len(value.split(".")[1]) == 3 for line in class_lines[1:] for value in line.split(",")[1:]
    )
    usage = subprocess.run([sys.executable, script, "only-one"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "Usage" in usage.stderr


def test_weights_file_argument(tmp_path: Path, cinc_dir: Path) -> None:
    shutil.copy(WEIGHTS_FILE, tmp_path / "w.csv")
    headers = official_spelling(cinc_dir, tmp_path / "labels")
    random_outputs(headers, tmp_path / "outputs", np.random.default_rng(1))
    assert (
        evaluate(tmp_path / "labels", tmp_path / "outputs", tmp_path / "w.csv").score_text()
        == evaluate(tmp_path / "labels", tmp_path / "outputs").score_text()
    )


def test_labels_and_outputs_in_subfolders_are_matched_by_relative_path(cinc_dir: Path, tmp_path: Path) -> None:
    """What test_model writes for a data folder with subfolders scores as the same records laid flat."""
    from ecgscore.files import unmatched_outputs

    headers = official_spelling(cinc_dir, tmp_path / "flat_labels")
    random_outputs(headers, tmp_path / "flat_outputs", np.random.default_rng(7))
    labels, outputs = tmp_path / "labels", tmp_path / "outputs"
    places = [".", "g1", "g2", "g2/deep"]
    for k, header in enumerate(headers):
        folder = places[k % len(places)]
        (labels / folder).mkdir(parents=True, exist_ok=True)
        (outputs / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(header, labels / folder / header.name)
        shutil.copy(tmp_path / "flat_outputs" / f"{header.stem}.csv", outputs / folder / f"{header.stem}.csv")
    flat = evaluate(tmp_path / "flat_labels", tmp_path / "flat_outputs")
    assert evaluate(labels, outputs).score_text() == flat.score_text()
    assert unmatched_outputs(labels, outputs) == []
    extra = outputs / "g1" / headers[2].name.replace(".hea", ".csv")  # in g1, but its label is in g2
    shutil.copy(outputs / "g2" / extra.name, extra)
    assert unmatched_outputs(labels, outputs) == [str(extra)]
    (outputs / "g2" / "deep" / f"{headers[3].stem}.csv").unlink()
    with pytest.raises(IOError, match=re.escape(f"{outputs / 'g2' / 'deep' / headers[3].stem}.csv")):
        evaluate(labels, outputs)


def test_cli_names_outputs_without_labels(tmp_path: Path) -> None:
    labels, outputs = tmp_path / "labels", tmp_path / "outputs"
    (labels / "g1").mkdir(parents=True)
    (outputs / "g1").mkdir(parents=True)
    write_label(labels / "g1" / "A.hea", [NSR])
    write_output(outputs / "g1" / "A.csv", "A", [NSR], [1], [1.0])
    write_output(outputs / "A.csv", "A", [NSR], [1], [1.0])
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate_model.py"), str(labels), str(outputs)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"warning: 1 output file(s) have no label file and are not scored: {outputs / 'A.csv'}"
    ]


def test_file_level_names_are_still_served_by_scoring_metric() -> None:
    """The file reading moved to ecgscore.files; ``ecgscore.metric.evaluate`` (as documented) still works."""
    from ecgscore import files

    assert metric.evaluate is files.evaluate and metric.Scores is files.Scores
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        metric.nothing  # noqa: B018
