"""``ecg-export MODEL OUT``: a model folder as ONNX networks and plain-array trees, for deployment.

Every lead set's network ensemble is exported with ``torch.onnx.export`` (opset 17, the number of
windows a dynamic axis; the TorchScript-based exporter, which needs nothing beyond torch and onnx,
while the newer torch.export-based one also needs onnxscript); its boosted trees are copied as the
``.npz`` of plain arrays the model folder already keeps; thresholds, decision rule, window
aggregation and blend weights go to ``export.json``; and :mod:`ecgclassify.onnx_runner` is copied
beside them, so OUT runs with numpy and onnxruntime alone. Each network is checked after export:
onnxruntime's logits on random inputs of 1 and 3 windows must equal torch's within 1e-4.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgclassify import onnx_runner
from ecgserve.blending import criterion_abbreviations
from ecgsignal import criteria as criteria_scores
from ecgsignal.features import FEATURE_NAMES

log = logging.getLogger("ecg-export")
OPSET = 17
CHECK_TOLERANCE = 1e-4


def _example_inputs(predictor: Any, windows: int, seed: int) -> tuple[Any, Any, Any]:
    import torch

    from ecgsignal.features import FIDUCIAL_CHANNELS

    generator = torch.Generator().manual_seed(seed)
    samples = predictor.config.window_samples
    return (
        torch.randn(windows, len(predictor.leads), samples, generator=generator),
        torch.rand(windows, len(FIDUCIAL_CHANNELS), samples, generator=generator),
        torch.randn(windows, predictor.scaler.num_inputs, generator=generator),
    )


def export_network(predictor: Any, path: Path) -> None:
    """The predictor's network as ONNX at ``path``, checked against torch on random inputs."""
    import onnxruntime
    import torch

    network = predictor.network.to("cpu").eval()
    axes = {name: {0: "windows"} for name in ("signal", "fiducials", "tabular", "logits")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and GRU batch-size notices
        torch.onnx.export(
            network,
            _example_inputs(predictor, 2, 0),
            str(path),
            input_names=["signal", "fiducials", "tabular"],
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for windows in (1, 3):
        inputs = _example_inputs(predictor, windows, windows)
        with torch.no_grad():
            expected = network(*inputs).numpy()
        feeds = dict(zip(("signal", "fiducials", "tabular"), (x.numpy() for x in inputs)))
        got = session.run(None, feeds)[0]
        if not np.allclose(got, expected, atol=CHECK_TOLERANCE, rtol=CHECK_TOLERANCE):
            raise RuntimeError(f"{path}: ONNX logits differ from torch's by {np.abs(got - expected).max():.3g}")


def export_model(model_dir: str | Path, out: str | Path) -> Path:
    """Write the export folder (see the module's docstring); returns ``out/export.json``."""
    from ecgserve.model_folder import read_manifest
    from ecgserve.predictor import load_predictor

    model_dir, out = Path(model_dir), Path(out)
    manifest = read_manifest(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    lead_sets: dict[str, Any] = {}
    for key, entry in manifest["models"].items():
        predictor = load_predictor(model_dir, tuple(entry["leads"]), device="cpu")
        onnx_name = f"net_{key}.onnx"
        export_network(predictor, out / onnx_name)
        trees = None
        if predictor.features_member is not None and predictor.member_weights is not None:
            trees_name = f"trees_{key}.npz"
            (out / trees_name).write_bytes(predictor.features_member.to_bytes())
            trees = {"file": trees_name, "weights": predictor.member_weights.tolist()}
            if predictor.network_calibration is not None:
                trees["network_calibration"] = predictor.network_calibration.tolist()
            names = criterion_abbreviations(predictor.classes)
            if predictor.criteria_weights is not None and names is not None:
                trees["criteria_weights"] = predictor.criteria_weights.tolist()
                trees["criteria_classes"] = list(names)
        lead_sets[key] = {
            "leads": list(predictor.leads),
            "onnx": onnx_name,
            "thresholds": predictor.thresholds.tolist(),
            "decision_rule": predictor.decision_rule,
            "window_aggregation": predictor.window_aggregation,
            "tabular_width": predictor.scaler.num_inputs,
            "trees": trees,
        }
        log.info("exported the %s network to %s", key, out / onnx_name)
    meta = {
        "format": onnx_runner.FORMAT,
        "format_version": onnx_runner.FORMAT_VERSION,
        "source": str(model_dir.resolve()),
        "classes": list(manifest["classes"]),
        "signal_config": manifest["signal_config"],
        "lead_sets": lead_sets,
        "feature_names": list(FEATURE_NAMES),
    }
    (out / "export.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.copy(Path(onnx_runner.__file__), out / "onnx_runner.py")
    shutil.copy(Path(criteria_scores.__file__), out / "criteria.py")  # the measured criteria, numpy only
    return out / "export.json"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ecg-export", description=__doc__.splitlines()[0])
    ap.add_argument("model", help="trained model folder")
    ap.add_argument("out", help="folder to write (ONNX networks, trees, export.json, onnx_runner.py)")
    args = ap.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        path = export_model(args.model, args.out)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"ecg-export: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path.parent} ({len(json.loads(path.read_text())['lead_sets'])} lead sets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
