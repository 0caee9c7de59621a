"""Networks: shapes, branch selection (the ablations), registry behaviour, determinism."""

from __future__ import annotations

import pytest
import torch

import models
from models.dual_branch import DualBranchCRNN


def _inputs(batch: int = 3, leads: int = 12, fiducial: int = 4, tabular: int = 20, samples: int = 2500):
    torch.manual_seed(0)
    return torch.randn(batch, leads, samples), torch.rand(batch, fiducial, samples), torch.randn(batch, tabular)


@pytest.mark.parametrize("branches", [("raw",), ("fiducial", "tabular"), ("raw", "fiducial", "tabular"), ("tabular",)])
@pytest.mark.parametrize("leads", [12, 6, 4, 3, 2])
def test_dual_crnn_output_shape_for_every_lead_count_and_branch_set(branches, leads):
    network = models.build("dual_crnn", num_leads=leads, num_fiducial=4, num_tabular=20, branches=branches)
    network.eval()
    logits = network(*_inputs(leads=leads))
    assert logits.shape == (3, 26)
    assert torch.isfinite(logits).all()


def test_branches_that_are_off_have_no_parameters_and_ignore_their_input():
    network = models.build("dual_crnn", num_leads=2, num_fiducial=4, num_tabular=20, branches=("raw",)).eval()
    assert not hasattr(network, "fiducial") and not hasattr(network, "tabular")
    signal, fiducials, tabular = _inputs(leads=2)
    with torch.no_grad():
        a = network(signal, fiducials, tabular)
        b = network(signal, fiducials * 0 + 5, tabular * 0 - 3)
    assert torch.equal(a, b)


def test_short_and_odd_window_lengths_work():
    network = models.build("dual_crnn", num_leads=3, num_fiducial=4, num_tabular=20).eval()
    with torch.no_grad():
        for samples in (625, 1001, 2500, 7501):
            assert network(*_inputs(leads=3, samples=samples)).shape == (3, 26)


def test_registry_rejects_unknown_and_duplicate_names():
    assert "dual_crnn" in models.available()
    with pytest.raises(KeyError, match="unknown architecture"):
        models.build("no_such_net")
    with pytest.raises(ValueError, match="already registered"):
        models.register("dual_crnn")(torch.nn.Linear)
    with pytest.raises(ValueError, match="branches"):
        DualBranchCRNN(12, 4, 20, branches=("raw", "spectrogram"))


def test_same_seed_same_weights():
    torch.manual_seed(7)
    a = models.build("dual_crnn", num_leads=2, num_fiducial=4, num_tabular=20).state_dict()
    torch.manual_seed(7)
    b = models.build("dual_crnn", num_leads=2, num_fiducial=4, num_tabular=20).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_architecture_follows_the_constructor_contract():
    """The trainer builds every network as (num_leads, num_fiducial, num_tabular, num_classes, branches, **kwargs)
    and stores the kwargs in a JSON manifest, so every default must be JSON-serialisable."""
    import inspect
    import json

    from models.registry import architecture

    for name in models.available():
        parameters = inspect.signature(architecture(name).__init__).parameters
        assert list(parameters)[1:6] == ["num_leads", "num_fiducial", "num_tabular", "num_classes", "branches"], name
        assert parameters["num_classes"].default == 26, name
        defaults = {k: p.default for k, p in parameters.items() if p.default is not inspect.Parameter.empty}
        json.dumps(defaults)  # raises for a non-serialisable default
