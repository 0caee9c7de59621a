"""The zoo (seed systems and PTB-XL baselines) at smoke size: each builds, has the right output shape,
learns from one step, reloads to identical outputs, trains and predicts through the project's trainer,
and takes raw / fiducial / tabular inputs as ``branches`` says. Plus the focal and asymmetric losses."""

from __future__ import annotations

import itertools
import json
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models
from ecgserve import model_folder
from ecgserve.inference import predict_records
from ecgserve.tabular import DEMOGRAPHIC_COLUMNS
from ecgsignal.images import ImageCache, ecg_images, paa, unit_scale
from ecgtrain.losses import AsymmetricLoss, FocalLoss, focal_loss
from ecgtrain.settings import Settings
from ecgtrain.trainer import train_network
from models.inputs import fit_length, resample

LEADS, FIDUCIAL, TABULAR, SAMPLES, CLASSES = 3, 2, 10, 250, 5

#: Smallest sensible size of every zoo architecture (the full sizes are their defaults).
TINY: dict[str, dict] = {
    "resnet1d_wang": {"width": 8, "head_hidden": [8]},
    "inception1d": {"depth": 3, "bottleneck": 4, "filters": 4, "head_hidden": [8]},
    "xresnet1d101": {"layers": [1, 1, 1, 1], "widths": [4, 4, 4, 4], "stem_widths": [4, 4, 8], "head_hidden": [8]},
    "resconv_bilstm_attn": {
        "filters": [8, 8],
        "lstm_units": 8,
        "attention_hidden": 8,
        "dense": 16,
        "metadata_dense": 4,
        "combined_dense": 8,
    },
    "imle_net": {
        "beats": 4,
        "beat_len": 25,
        "filters": [4, 8, 8],
        "blocks_per_stage": 1,
        "attention_dim": 8,
        "lstm_units": 4,
    },
    "resu_dense_mhsa": {
        "width": 16,
        "mid": 8,
        "depths": [3, 2],
        "dense_layers": 2,
        "growth": 4,
        "heads": 2,
        "model_samples": 256,
    },
    "seed001_cnn": {"layers": [[4, 5, 0.0], [4, 5, 0.0], [8, 4, 0.3]], "dense": [8, 8], "model_samples": 500},
    "gru": {"hidden": 8, "layers": 2, "model_fs": 50.0},
    "lstm": {"hidden": 8, "layers": 2, "model_fs": 50.0},
    "bigru_attn": {"hidden": 8, "layers": 2, "model_fs": 50.0},
    "image_alexnet": {"nb": 4, "fc": [16, 16], "image_size": 64, "cache_windows": 8},
    "image_resnet": {"stem": 4, "layers": [1, 1], "widths": [2, 4], "image_size": 32, "cache_windows": 8},
    "image_vgg": {"stages": [[4], [8]], "fc": [16, 16], "pool": 2, "image_size": 16, "cache_windows": 8},
}
TINY["late_fusion"] = {
    "members": {"bigru_attn": TINY["bigru_attn"], "image_resnet": TINY["image_resnet"]},
    "hidden": 16,
    "dropout": 0.1,
}
ZOO = sorted(TINY)


def _build(name: str, branches=("raw", "fiducial", "tabular"), leads: int = LEADS, **extra) -> torch.nn.Module:
    kwargs = {
        "num_leads": leads,
        "num_fiducial": FIDUCIAL,
        "num_tabular": TABULAR,
        "num_classes": CLASSES,
        "branches": list(branches),
        **TINY[name],
        **extra,
    }
    return models.build(name, **kwargs)


def _batch(batch: int = 4, leads: int = LEADS, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    signal = torch.randn(batch, leads, SAMPLES, generator=generator)
    fiducials = (torch.rand(batch, FIDUCIAL, SAMPLES, generator=generator) > 0.7).float()
    tabular = torch.randn(batch, TABULAR, generator=generator)
    target = (torch.rand(batch, CLASSES, generator=generator) > 0.5).float()
    return signal, fiducials, tabular, target


def test_every_zoo_architecture_is_registered():
    assert set(ZOO) <= set(models.available())
    assert "dual_crnn" in models.available()


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("branches", [("raw",), ("raw", "fiducial", "tabular"), ("fiducial",)])
def test_output_shape_and_finite(name, branches):
    network = _build(name, branches).eval()
    signal, fiducials, tabular, _ = _batch()
    with torch.no_grad():
        logits = network(signal, fiducials, tabular)
    assert logits.shape == (4, CLASSES)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ZOO)
def test_other_lead_counts_and_window_lengths(name):
    network = _build(name, leads=12).eval()
    generator = torch.Generator().manual_seed(3)
    for samples in (200, 313):
        inputs = (
            torch.randn(2, 12, samples, generator=generator),
            torch.rand(2, FIDUCIAL, samples, generator=generator),
            torch.randn(2, TABULAR, generator=generator),
        )
        with torch.no_grad():
            assert network(*inputs).shape == (2, CLASSES)


@pytest.mark.parametrize("name", ZOO)
def test_one_training_step_lowers_the_loss(name):
    torch.manual_seed(0)
    network = _build(name).train()
    signal, fiducials, tabular, target = _batch()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # the same dropout masks before and after the step
        return F.binary_cross_entropy_with_logits(network(signal, fiducials, tabular), target)

    before = loss()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < before.item()


@pytest.mark.parametrize("name", ZOO)
def test_saved_model_reloads_to_identical_outputs(name, tmp_path):
    torch.manual_seed(0)
    kwargs = json.loads(json.dumps({"num_leads": LEADS, "num_fiducial": FIDUCIAL, "num_tabular": TABULAR,
                                    "num_classes": CLASSES, "branches": ["raw", "fiducial", "tabular"], **TINY[name]}))  # fmt: skip
    network = models.build(name, **kwargs)
    signal, fiducials, tabular, target = _batch()
    # One step so the batch-norm statistics and weights differ from a fresh build.
    F.binary_cross_entropy_with_logits(network(signal, fiducials, tabular), target).backward()
    torch.optim.SGD(network.parameters(), lr=0.1).step()
    entry = model_folder.save_weights(tmp_path, ("I", "II", "V2"), network.state_dict())
    torch.manual_seed(99)
    again = models.build(name, **json.loads(json.dumps(kwargs)))
    again.load_state_dict(model_folder.load_weights(tmp_path, entry))
    with torch.no_grad():
        assert torch.equal(network.eval()(signal, fiducials, tabular), again.eval()(signal, fiducials, tabular))


@pytest.mark.parametrize("name", ZOO)
def test_raw_only_ignores_fiducials_and_tabular(name):
    extra = {"metadata": False} if name == "resconv_bilstm_attn" else {}
    network = _build(name, ("raw",), **extra).eval()
    signal, fiducials, tabular, _ = _batch()
    with torch.no_grad():
        a = network(signal, fiducials, tabular)
        b = network(signal, 1 - fiducials, -tabular)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["resnet1d_wang", "imle_net", "gru"])
def test_features_on_means_the_network_reads_them(name):
    network = _build(name, ("raw", "fiducial", "tabular")).eval()
    signal, fiducials, tabular, _ = _batch()
    with torch.no_grad():
        a = network(signal, fiducials, tabular)
        assert not torch.equal(a, network(signal, 1 - fiducials, tabular))
        assert not torch.equal(a, network(signal, fiducials, tabular + 1))


def test_ptbxl_baselines_use_the_benchmarks_crops():
    """2.5-s crops at 100 Hz: a random one per example in training, the maximum over crops every 1.25 s in eval."""
    torch.manual_seed(0)
    network = _build("resnet1d_wang", ("raw", "tabular"), crop_seconds=0.5).eval()  # 50-sample crops
    signal, fiducials, tabular, _ = _batch()  # 250 samples at 250 Hz -> 100 at 100 Hz
    assert network.crop == 50
    x = network.inputs(signal, fiducials)
    with torch.no_grad():
        expected = torch.stack(
            [network.head(network.backbone(x[..., s : s + 50]), tabular) for s in (0, 25, 50)], dim=1
        ).amax(dim=1)
        assert torch.allclose(network(signal, fiducials, tabular), expected, atol=1e-6)
    seen = []
    network.train()
    network.backbone.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    network(signal, fiducials, tabular)
    assert seen[-1].shape == (4, LEADS, 50)
    for b in range(4):  # every example's crop is a stretch of its own signal
        assert any(torch.equal(seen[-1][b], x[b, :, s : s + 50]) for s in range(51))
    whole = _build("resnet1d_wang", crop_seconds=None).train()
    whole.backbone.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    whole(signal, fiducials, tabular)
    assert seen[-1].shape == (4, LEADS + FIDUCIAL, 100)


def test_seed004_metadata_reads_only_age_and_sex_columns():
    assert len(DEMOGRAPHIC_COLUMNS) == 4  # models.inputs.DEMOGRAPHIC_WIDTH relies on this layout
    network = _build("resconv_bilstm_attn", ("raw",)).eval()
    signal, fiducials, tabular, _ = _batch()
    changed_features, changed_sex = tabular.clone(), tabular.clone()
    changed_features[:, :-4] += 1
    changed_sex[:, -1] += 1
    with torch.no_grad():
        a = network(signal, fiducials, tabular)
        assert torch.equal(a, network(signal, fiducials, changed_features))
        assert not torch.equal(a, network(signal, fiducials, changed_sex))
    assert network.LOSS == {"name": "focal", "alpha": 0.434, "gamma": 2.135}


def test_attention_weights_are_exposed_and_normalised():
    signal, fiducials, tabular, _ = _batch()
    imle = _build("imle_net", ("raw", "fiducial")).eval()
    with torch.no_grad():
        imle(signal, fiducials, tabular)
    channel = imle.last_attention["channel"]
    assert channel.shape == (4, LEADS + FIDUCIAL)  # one importance per lead (and fiducial channel)
    assert torch.allclose(channel.sum(dim=1), torch.ones(4))
    assert imle.last_attention["rhythm"].shape == (4, LEADS + FIDUCIAL, 4)
    assert imle.last_attention["beat"].shape[:3] == (4, LEADS + FIDUCIAL, 4)
    for name, key in (("resconv_bilstm_attn", "time"), ("bigru_attn", "time"), ("resu_dense_mhsa", "self")):
        network = _build(name).eval()
        with torch.no_grad():
            network(signal, fiducials, tabular)
        weights = network.last_attention[key]
        assert weights.shape[0] == 4
        assert torch.allclose(weights.sum(dim=-1), torch.ones(weights.shape[:-1]), atol=1e-5)


def test_full_size_seed000_has_the_seeds_parameter_count():
    network = models.build("resu_dense_mhsa", num_leads=12, num_fiducial=4, num_tabular=20, branches=["raw"])
    assert sum(p.numel() for p in network.parameters()) == 7_206_746  # stated for seorim0/ResU_Dense


def test_full_size_seed001_flattens_71_by_128():
    network = models.build("seed001_cnn", num_leads=12, num_fiducial=4, num_tabular=20, branches=["raw"])
    assert network.classifier[0].in_features == 9088
    with torch.no_grad():
        assert network.features(torch.zeros(1, 12, 5000)).shape == (1, 9088)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="branches"):
        _build("resnet1d_wang", ("raw", "spectrogram"))
    with pytest.raises(ValueError, match="'raw' or 'fiducial'"):
        _build("inception1d", ("tabular",))
    with pytest.raises(ValueError, match="multiple of 3"):
        _build("inception1d", depth=4)
    with pytest.raises(ValueError, match="sampling rates"):
        _build("gru", model_fs=0.0)
    with pytest.raises(ValueError, match="too few"):
        _build("seed001_cnn", model_samples=20)


def test_resample_and_fit_length():
    x = torch.arange(10.0).reshape(1, 1, 10)
    assert torch.equal(resample(x, 250, 250), x)
    down = resample(x, 250, 125)
    assert down.shape == (1, 1, 5) and torch.allclose(down, torch.tensor([[[0.5, 2.5, 4.5, 6.5, 8.5]]]))
    up = resample(x, 100, 200)
    assert up.shape == (1, 1, 20) and up.min() >= 0 and up.max() <= 9
    assert torch.equal(fit_length(x, 4), x[..., :4])
    padded = fit_length(x, 12)
    assert padded.shape[-1] == 12 and torch.equal(padded[..., 10:], torch.zeros(1, 1, 2))


def test_late_fusion_with_frozen_trained_members_fits_only_its_head():
    torch.manual_seed(0)
    trained = {name: _build(name, ("raw",)).state_dict() for name in ("bigru_attn", "image_resnet")}
    network = _build("late_fusion", ("raw", "tabular"), freeze_members=True)
    network.load_members(trained)
    network.train()
    assert not any(m.training for m in network.members.modules())
    signal, fiducials, tabular, target = _batch()
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=1e-2)
    F.binary_cross_entropy_with_logits(network(signal, fiducials, tabular), target).backward()
    optimizer.step()
    for name, state in trained.items():
        after = network.members[name].state_dict()
        assert all(torch.equal(state[k], after[k]) for k in state), name
    with pytest.raises(KeyError, match="no member"):
        network.load_members({"gru": {}})
    with pytest.raises(ValueError, match="two member"):
        _build("late_fusion", members={"gru": TINY["gru"]})


# ---- through the project's trainer -------------------------------------------------------------


class _FakeStore:
    """Prepared-record store of synthetic one-window records: class 0 = fast sine, class 1 = large amplitude."""

    def __init__(self, records: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.targets = rng.random((records, 26)) < 0.4  # the trainer scores the 26 Challenge classes
        t = np.arange(SAMPLES) / 250.0
        signals = rng.normal(0, 0.3, (records, 1, LEADS, SAMPLES)).astype(np.float32)
        signals += np.where(self.targets[:, 0, None, None, None], np.sin(2 * np.pi * 8 * t), np.sin(2 * np.pi * t))
        signals *= np.where(self.targets[:, 1, None, None, None], 2.0, 1.0)
        self.windows = signals.astype(np.float32)
        self.fiducial_windows = (rng.random((records, 1, FIDUCIAL, SAMPLES)) > 0.8).astype(np.float32)
        self.features = rng.normal(size=(records, 3)).astype(np.float32)
        self.feature_present = np.ones((records, 3), bool)

    def record(self, i: int):
        return types.SimpleNamespace(windows=self.windows[i], fiducials=self.fiducial_windows[i])

    def window(self, i: int, j: int):
        return self.windows[i, j], self.fiducial_windows[i, j]

    def num_windows(self, i: int) -> int:
        return 1


def _lead_set_data(records: int = 12):
    from ecgtrain.data import LeadSetData

    store = _FakeStore(records)
    return LeadSetData(
        leads=("I", "II", "V2"),
        names=[f"r{i}" for i in range(records)],
        targets=store.targets,
        ages=np.linspace(20, 80, records),
        sexes=["Male", "Female", None] * (records // 3),
        store=store,
        store_rows=np.arange(records),
    )


@pytest.mark.parametrize("name", ZOO)
def test_trains_and_predicts_through_the_projects_trainer(name):
    data = _lead_set_data()
    settings = Settings(
        architecture=name,
        model_kwargs={k: v for k, v in TINY[name].items()},
        epochs=2,
        batch_size=4,
        min_epochs=1,
        progress=False,
        device="cpu",
        augment=False,
        threshold_strategy="fixed",
    )
    rows = np.arange(len(data))
    trained = train_network(data, settings, rows[:8], rows[8:])
    assert trained.architecture == name and len(trained.history) == 2
    assert all(np.isfinite(h["loss"]) for h in trained.history)
    # The stored kwargs rebuild the network; the stored weights reproduce its validation probabilities.
    kwargs = json.loads(json.dumps(trained.model_kwargs))
    assert kwargs["num_leads"] == LEADS and kwargs["num_fiducial"] == FIDUCIAL
    network = models.build(name, **kwargs)
    network.load_state_dict(trained.state_dict)
    tabular = trained.scaler.transform(*data.features(), data.ages, data.sexes)
    items = [(data.prepared(i).windows, data.prepared(i).fiducials, tabular[i]) for i in rows[8:]]
    probabilities = predict_records(network, items, torch.device("cpu"))
    assert probabilities.shape == (4, 26)
    np.testing.assert_allclose(probabilities, trained.val_probabilities, rtol=0, atol=1e-6)


# ---- losses ---------------------------------------------------------------------------------------


def _logits_and_targets():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(64, CLASSES, generator=generator) * 3, (torch.rand(64, CLASSES, generator=generator) > 0.7)


def test_focal_loss_reduces_to_bce_and_down_weights_easy_labels():
    logits, targets = _logits_and_targets()
    bce = F.binary_cross_entropy_with_logits(logits, targets.float())
    assert torch.allclose(FocalLoss(alpha=1.0, gamma=0.0)(logits, targets), bce, atol=1e-6)
    easy = torch.tensor([[6.0]]), torch.tensor([[1.0]])
    hard = torch.tensor([[-1.0]]), torch.tensor([[1.0]])
    focal = FocalLoss(alpha=1.0, gamma=2.0)
    ratio_easy = focal(*easy) / F.binary_cross_entropy_with_logits(*easy)
    ratio_hard = focal(*hard) / F.binary_cross_entropy_with_logits(*hard)
    assert ratio_easy < 1e-4 < ratio_hard < 1
    # By hand: p_t = sigmoid(-1), loss = alpha * (1 - p_t)^gamma * -log p_t.
    p = torch.sigmoid(torch.tensor(-1.0))
    assert torch.allclose(FocalLoss(0.434, 2.135)(*hard), 0.434 * (1 - p) ** 2.135 * -torch.log(p))


def test_focal_loss_class_weights_scale_positive_terms_only():
    targets = np.zeros((10, 2), bool)
    targets[:1, 0] = True  # 1 positive in 10: weight sqrt(9) = 3
    loss = focal_loss(targets, alpha=1.0, gamma=0.0)
    positive = loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(positive, torch.tensor((3 * np.log(2) + np.log(2)) / 2, dtype=torch.float32))
    with pytest.raises(ValueError):
        FocalLoss(alpha=0.0)


def test_asymmetric_loss_reduces_to_bce_and_drops_easy_negatives():
    logits, targets = _logits_and_targets()
    bce = F.binary_cross_entropy_with_logits(logits, targets.float())
    assert torch.allclose(AsymmetricLoss(0.0, 0.0, 0.0)(logits, targets), bce, atol=1e-5)
    easy_negative = AsymmetricLoss()(torch.tensor([[-3.5]]), torch.tensor([[0.0]]))  # p = 0.029 < clip
    assert easy_negative.item() == 0.0
    assert AsymmetricLoss()(torch.tensor([[2.0]]), torch.tensor([[0.0]])).item() > 0
    with pytest.raises(ValueError):
        AsymmetricLoss(clip=1.0)


# ---- lead images (seed 002's image route) -----------------------------------------------------------


def test_images_match_the_definitions_computed_by_loops():
    rng = np.random.default_rng(1)
    window = rng.normal(size=(1, 2, 40)).astype(np.float32)
    u_full = unit_scale(window)
    u = paa(u_full, 8)
    assert np.allclose(u[0, 0], u_full[0, 0].reshape(8, 5).mean(axis=1))
    images = ecg_images(window, 8).astype(float) / 255
    assert images.shape == (1, 6, 8, 8)
    for lead in range(2):
        series, full = u[0, lead], u_full[0, lead]
        phi = np.arccos(2 * series - 1)
        gaf = (np.cos(phi[:, None] + phi[None, :]) + 1) / 2
        bins = np.minimum((full * 10).astype(int), 9)
        counts = np.zeros((10, 10))
        for a, b in itertools.pairwise(bins):
            counts[a, b] += 1
        transitions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        points = np.minimum((series * 10).astype(int), 9)
        mtf = np.array([[transitions[a, b] for b in points] for a in points])
        rp = np.array([[min(abs(a - b) / 0.1, 10) / 10 for b in series] for a in series])
        for k, expected in enumerate((gaf, mtf, rp)):
            assert np.abs(images[0, 3 * lead + k] - expected).max() <= 0.5 / 255 + 1e-6, (lead, k)


def test_images_of_a_flat_lead_and_bad_shapes():
    window = np.zeros((1, 1, 100), np.float32)
    images = ecg_images(window, 16)
    assert images.shape == (1, 3, 16, 16) and np.isfinite(images).all()
    assert (images[0, 2] == 0).all()  # no distance anywhere
    with pytest.raises(ValueError, match="ecg_images"):
        ecg_images(np.zeros((10, 100)), 16)


def test_image_cache_reuses_and_evicts():
    rng = np.random.default_rng(2)
    windows = rng.normal(size=(5, 2, 60)).astype(np.float32)
    cache = ImageCache(max_windows=3)
    first = cache.images(windows[:3], 16)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 3)
    again = cache.images(windows[1:4], 16)
    assert (cache.hits, cache.misses, len(cache)) == (2, 4, 3)
    assert np.array_equal(again[:2], first[1:])
    assert np.array_equal(cache.images(windows[:1], 16), ecg_images(windows[:1], 16))  # evicted: recomputed
    assert cache.misses == 5
    assert cache.images(windows[:1], 8).shape == (1, 6, 8, 8)  # the size is part of the key


# ---- on real records -------------------------------------------------------------------------------


def test_default_input_rate_is_the_signal_layers_rate():
    import inspect

    from ecgsignal.config import SignalConfig
    from models.registry import architecture

    for name in ZOO:
        parameters = inspect.signature(architecture(name).__init__).parameters
        if "input_fs" in parameters:
            assert parameters["input_fs"].default == SignalConfig().fs, name


def test_real_records_through_the_signal_layer_and_the_zoo(cinc_dir):
    """Two real 12-lead records, prepared as the trainer prepares them, read by three zoo networks."""
    from ecgio import read_record
    from ecgserve.tabular import TabularScaler
    from ecgsignal.config import SignalConfig
    from ecgsignal.pipeline import prepare

    config = SignalConfig()
    headers = sorted(cinc_dir.glob("*.hea"))[:2]
    prepared, records = [], []
    for header in headers:
        record = read_record(header)
        records.append(record)
        prepared.append(prepare(record.signal, record.fs, record.leads, config))
    signal = torch.from_numpy(np.stack([p.windows[0] for p in prepared]).astype(np.float32))
    fiducials = torch.from_numpy(np.stack([p.fiducials[0] for p in prepared]).astype(np.float32))
    values = np.stack([p.features for p in prepared])
    present = np.stack([p.feature_present for p in prepared])
    scaler = TabularScaler.fit(values, present)
    tabular = torch.from_numpy(
        scaler.transform(values, present, np.array([r.age for r in records]), [r.sex for r in records])
    )
    leads, channels = signal.shape[1], fiducials.shape[1]
    assert signal.shape[-1] == config.window_samples
    for name, kwargs in (
        ("resnet1d_wang", TINY["resnet1d_wang"]),
        ("imle_net", {"filters": [4, 8, 8], "blocks_per_stage": 1, "attention_dim": 8, "lstm_units": 4}),
        ("resconv_bilstm_attn", TINY["resconv_bilstm_attn"]),
    ):
        network = models.build(
            name, num_leads=leads, num_fiducial=channels, num_tabular=tabular.shape[1], **kwargs
        ).eval()
        with torch.no_grad():
            logits = network(signal, fiducials, tabular)
        assert logits.shape == (2, 26) and torch.isfinite(logits).all(), name
        if name == "imle_net":
            # 10 s at 250 Hz -> 1000 samples at 100 Hz -> 20 segments of 50, exactly the seed's layout.
            assert network.last_attention["rhythm"].shape == (2, leads + channels, 20)
