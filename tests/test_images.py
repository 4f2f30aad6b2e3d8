"""Image noise, the image container and loaders, MobileNet models and the label probe."""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pandas as pd
import pytest
import yaml

import helpers as hp
from helpers import data as hdata
from helpers import imaging, probe
from helpers.datasets.images import ImageData, load_tissuemnist, read_idx, subsample_splits
from helpers.models import make_model
from helpers.noise.images import CORRUPTIONS, ImageCorruption, gaussian, pixelate, x_value

torch = pytest.importorskip("torch")


# ----------------------------------------------------------------------------- noise


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 7])
def test_pixelate_is_the_mean_of_every_whole_tile(factor):
    rng = np.random.default_rng(factor)
    x = rng.normal(size=(3, 2, 15, 22)).astype(np.float32)
    out = pixelate(x, factor)
    h2, w2 = 15 // factor, 22 // factor
    assert out.shape == (3, 2, h2, w2)
    for i in range(h2):
        for j in range(w2):
            tile = x[:, :, i * factor:(i + 1) * factor, j * factor:(j + 1) * factor]
            np.testing.assert_allclose(out[:, :, i, j], tile.mean(axis=(2, 3)), rtol=1e-5,
                                       atol=1e-6)
    # identical to torch's average pooling (the authors' TissueMNIST code)
    ref = torch.nn.functional.avg_pool2d(torch.from_numpy(x), factor, factor).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_pixelate_identity_at_one_and_resize_back():
    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(pixelate(x, 1), x)
    np.testing.assert_array_equal(pixelate(x, 1, size="same"), x)
    nearest = pixelate(x, 4, size="same", mode="nearest")
    assert nearest.shape == x.shape
    np.testing.assert_allclose(nearest[:, :, :4, :4].std(axis=(2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(nearest[0, 1, 0, 0], x[0, 1, :4, :4].mean(), rtol=1e-6)
    bilinear = pixelate(x, 4, size="same")
    assert bilinear.shape == x.shape
    # a bilinear resize of 2 x 2 tile means keeps the overall mean within the tile range
    assert bilinear.min() >= pixelate(x, 4).min() - 1e-6
    assert bilinear.max() <= pixelate(x, 4).max() + 1e-6
    with pytest.raises(ValueError, match="positive integer"):
        pixelate(x, 0)
    with pytest.raises(ValueError, match="larger than"):
        pixelate(x, 9)
    with pytest.raises(ValueError, match="N x C x H x W"):
        pixelate(x[0], 2)


def test_gaussian_has_the_requested_variance_and_is_reproducible():
    x = np.full((64, 3, 64, 64), 0.25, dtype=np.float32)  # 786,432 pixels
    before = x.copy()
    for sigma in (0.05, 1.0, 30.0):
        y = gaussian(x, sigma, seed=7)
        noise = (y - x).astype(np.float64)
        assert abs(noise.var() / sigma**2 - 1) < 0.02
        assert abs(noise.mean()) < 5 * sigma / np.sqrt(noise.size)
        np.testing.assert_array_equal(y, gaussian(x, sigma, seed=7))
        assert not np.array_equal(y, gaussian(x, sigma, seed=8))
        # independent across the channels of a repeated grey image, as torch.randn_like
        assert abs(np.corrcoef(noise[:, 0].ravel(), noise[:, 1].ravel())[0, 1]) < 0.01
    np.testing.assert_array_equal(x, before)  # the input is never modified
    np.testing.assert_array_equal(gaussian(x, 0.0, seed=0), x)
    with pytest.raises(ValueError, match="sigma"):
        gaussian(x, -1.0, seed=0)


def test_x_axes_by_name_and_corruption_shape():
    assert x_value(0.1, "1/sigma") == pytest.approx(10.0)
    assert x_value(0.1, "1/sigma^2") == pytest.approx(100.0)
    assert x_value(4, "1/F") == 0.25
    assert x_value(4, "1/F^2") == 0.0625
    with pytest.raises(ValueError, match="x-axis"):
        x_value(1.0, "snr")
    data = ImageData(np.random.default_rng(0).random((4, 1, 8, 8)), labels=[0, 1, 0, 1])
    before = data.images.copy()
    noisy, x = CORRUPTIONS["tissuemnist_pixelate"](data, 2, seed=0)
    assert x == 0.25 and noisy.images.shape == (4, 1, 8, 8) and len(noisy) == 4
    noisy, x = CORRUPTIONS["caltech101_pixelate"](data, 2, seed=0)
    assert x == 0.5 and noisy.images.shape == (4, 1, 4, 4)
    noisy, x = CORRUPTIONS["tissuemnist_gaussian"](data, 0.5, seed=3)
    assert x == 2.0
    np.testing.assert_array_equal(noisy.images, gaussian(before, 0.5, seed=3))
    np.testing.assert_array_equal(data.images, before)
    assert list(noisy.obs["label"]) == list(data.obs["label"])
    with pytest.raises(ValueError, match="kind"):
        ImageCorruption("blur", "1/F")
    with pytest.raises(TypeError, match="ImageData"):
        CORRUPTIONS["tissuemnist_gaussian"](before, 0.5, seed=0)


# ----------------------------------------------------------------------------- container


def test_image_data_protocol():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"split": ["train"] * 4 + ["test"] * 2})
    data = ImageData(rng.random((6, 1, 4, 4)), obs,
                     labels=["b", "a", "b", "c", "a", "c"], classes=["a", "b", "c"])
    assert data.images.dtype == np.float32 and len(data) == 6
    assert data.label_codes.tolist() == [1, 0, 1, 2, 0, 2]
    sub = data[np.array([4, 0])]
    assert isinstance(sub, ImageData) and sub.label_codes.tolist() == [0, 1]
    np.testing.assert_array_equal(sub.images[1], data.images[0])
    assert len(data[data.obs["split"].to_numpy() == "test"]) == 2
    assert data.split("train").classes == ["a", "b", "c"]
    copy = data.copy()
    copy.images[0] = 9
    copy.obs.loc[0, "split"] = "x"
    assert data.images[0].max() < 9 and data.obs.loc[0, "split"] == "train"
    with pytest.raises(ValueError, match="N x C x H x W"):
        ImageData(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="integer labels"):
        ImageData(np.zeros((2, 1, 2, 2)), labels=[0, 5], classes=["a", "b"])
    with pytest.raises(TypeError, match="integer or boolean"):
        data[np.array([0.5])]


def test_subsample_splits_is_stratified_and_seeded():
    labels = np.repeat([0, 1, 2], [60, 30, 10])
    data = ImageData(np.zeros((100, 1, 1, 1)), pd.DataFrame({"split": ["train"] * 100}),
                     labels=labels, classes=["a", "b", "c"])
    sub = subsample_splits(data, {"train": 20}, seed=1)
    assert np.bincount(sub.label_codes).tolist() == [12, 6, 2]
    again = subsample_splits(data, {"train": 20}, seed=1)
    assert sub.obs.equals(again.obs)


def test_read_idx_roundtrip():
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    dims = b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    raw = bytes([0, 0, 8, 3]) + dims + arr.tobytes()
    np.testing.assert_array_equal(read_idx(gzip.compress(raw)), arr)
    with pytest.raises(ValueError, match="magic"):
        read_idx(b"\x01\x02\x03\x04")


# ----------------------------------------------------------------------------- probe pieces


def test_discrete_mi_against_exact_values():
    assert probe.discrete_mi([0, 1, 2, 3] * 10, [0, 1, 2, 3] * 10) == pytest.approx(2.0)
    assert probe.discrete_mi([0, 1] * 50, [0] * 100) == 0.0
    # binary symmetric channel with flip rate 1/4 on a uniform bit: 1 - H(1/4) bits
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 25)
    b = np.array([0, 0, 0, 1, 1, 1, 1, 0] * 25)
    h = -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75))
    assert probe.discrete_mi(a, b) == pytest.approx(1 - h)


def test_balanced_one_vs_all():
    labels = np.repeat([0, 1, 2, 3], [50, 10, 20, 20])
    idx = probe.balanced_one_vs_all(labels, 1, seed=0)
    assert (labels[idx] == 1).sum() == 10 and (labels[idx] != 1).sum() == 10
    assert len(set(idx.tolist())) == 20
    idx0 = probe.balanced_one_vs_all(labels, 0, seed=0)  # the class is the majority
    assert (labels[idx0] == 0).sum() == 50 and (labels[idx0] != 0).sum() == 50


def test_effective_resolution():
    assert imaging.effective_resolution(1 / 16, x_axis="1/F^2", size=224) == pytest.approx(56)
    assert imaging.effective_resolution(0.25, x_axis="1/F", size=240) == pytest.approx(60)
    with pytest.raises(ValueError, match="pixelation"):
        imaging.effective_resolution(0.1, x_axis="1/sigma", size=28)


# ----------------------------------------------------------------------------- models


def _toy_images(n=64, seed=0, size=16):
    """Two classes that differ in the brightness of the left half: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    x = rng.normal(0, 0.1, (n, 1, size, size)).astype(np.float32)
    x[labels == 1, :, :, : size // 2] += 1.0
    return ImageData(x, pd.DataFrame({"split": ["train"] * n}), labels=labels,
                     classes=["dark", "bright"])


def test_mobilenet_v3_fit_embed_predict_learns_a_simple_task():
    data = _toy_images(128)
    model = make_model("MobileNetV3", profile="smoke", epochs=4, batch_size=32, lr=3e-3)
    model.fit(data, progress=False, val=_toy_images(64, seed=1))
    test = _toy_images(64, seed=2)
    z = model.embed(test)
    assert z.shape == (64, 1024) and z.dtype == np.float32
    pred = model.predict(test)
    assert (pred == test.label_codes).mean() > 0.9
    assert len(model.history_["train_loss"]) == 4
    assert model.history_["val_accuracy"][-1] > 0.9
    # the embedding is classifier[0] (Linear 576 -> 1024) after the in-place Hardswish: what
    # the authors' forward hook on classifier[0] ends up holding
    net = model.net_
    with torch.no_grad():
        x = torch.from_numpy(test.images[:5]).expand(-1, 3, -1, -1)
        feats = torch.flatten(net.avgpool(net.features(x)), 1)
        ref = torch.nn.functional.hardswish(net.classifier[0](feats)).numpy()
        np.testing.assert_allclose(z[:5], ref, rtol=1e-4, atol=1e-4)
    assert model.n_parameters > 1_000_000
    with pytest.raises(ValueError, match="not among the training classes"):
        model.fit(data, val=ImageData(test.images, labels=np.array(["x"] * 64)), progress=False)


def test_mobilenet_v2_embeds_the_pooled_features():
    data = _toy_images(32)
    model = make_model("MobileNetV2", profile="smoke").fit(data, progress=False)
    assert model.config.arch == "v2"
    assert model.embed(data).shape == (32, 1280)
    assert make_model("MobileNetV2", profile="paper").config.n_outputs == 101


def test_profiles_follow_table_s4():
    cfg = make_model("MobileNetV3", profile="paper").config
    assert (cfg.pretrained, cfg.lr, cfg.batch_size, cfg.epochs) == (True, 1e-3, 512, 30)
    assert cfg.bn_recalibrate == 0
    cfg2 = make_model("MobileNetV2", profile="paper").config
    assert (cfg2.pretrained, cfg2.lr, cfg2.batch_size, cfg2.epochs) == (True, 1e-4, 128, 5)
    assert not make_model("MobileNetV3", profile="quick").config.pretrained


# ----------------------------------------------------------------------------- paper code path


@pytest.fixture
def tiny_manifest(tmp_path, monkeypatch):
    """A manifest whose TissueMNIST and ImageNet-weights entries are tiny local stand-ins."""
    from torchvision import models

    cache = tmp_path / "cache"
    rng = np.random.default_rng(0)
    splits = {"train": 24, "val": 8, "test": 16}
    arrays = {}
    for name, n in splits.items():
        labels = np.arange(n) % 8
        imgs = rng.integers(0, 60, (n, 32, 32), dtype=np.uint8)
        imgs[:, :8, :] += (labels * 20)[:, None, None].astype(np.uint8)
        arrays[f"{name}_images"] = imgs
        arrays[f"{name}_labels"] = labels[:, None]
    npz = cache / "full/medmnist/tissuemnist_224.npz"
    npz.parent.mkdir(parents=True)
    np.savez(npz, **arrays)
    torch.manual_seed(0)
    state = models.mobilenet_v3_small(weights=None).state_dict()
    pth = cache / "full/torchvision/mobilenet_v3_small-test.pth"
    pth.parent.mkdir(parents=True)
    torch.save(state, pth)
    manifest = {"entries": {
        "medmnist/tissuemnist_224": {"path": "full/medmnist/tissuemnist_224.npz", "url": None,
                                    "sha256": hdata.sha256sum(npz)},
        "torchvision/mobilenet_v3_small_imagenet1k_v1": {
            "path": "full/torchvision/mobilenet_v3_small-test.pth", "url": None,
            "sha256": hdata.sha256sum(pth)},
    }}
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv(hdata.MANIFEST_ENV, str(path))
    monkeypatch.setenv(hdata.CACHE_ENV, str(cache))
    return arrays, state


def test_tissuemnist_loader_on_a_stand_in(tiny_manifest):
    arrays, _ = tiny_manifest
    data = load_tissuemnist(size=224)
    assert data.shape == (40, 3, 32, 32)
    assert data.obs["split"].value_counts().to_dict() == {"train": 24, "test": 16}
    np.testing.assert_allclose(data.images[0, 2], arrays["train_images"][0] / 255, rtol=1e-6)
    np.testing.assert_array_equal(data.images[:, 0], data.images[:, 1])
    assert data.classes[5] == "Podocytes"
    assert data.split("test").label_codes.tolist() == (np.arange(16) % 8).tolist()
    sub = load_tissuemnist(size=224, n_train=8, n_test=8)
    assert np.bincount(sub.split("train").label_codes).tolist() == [1] * 8


def test_paper_profile_path_with_pretrained_weights(tiny_manifest):
    _, state = tiny_manifest
    model = make_model("MobileNetV3", profile="paper")
    assert model.config.batch_size == 512 and model.config.pretrained
    net = model._build(8)  # weights through helpers.data.fetch, head replaced by 8 outputs
    np.testing.assert_array_equal(net.features[0][0].weight.detach().numpy(),
                                  state["features.0.0.weight"].numpy())
    assert net.classifier[3].out_features == 8
    # one job of the registered task at the paper profile, end to end through the sweep: the
    # TissueMNIST loader, pixelation, Table S4 (batch 512, 30 epochs), the label probe (the
    # latent-MI probes need more than these 40 images, so the predicted-label one runs)
    spec = dataclasses.replace(hp.tasks.get("tissuemnist_pixelate"), name="tissue_paper_test",
                               probe=hp.probe.predicted_label_probe)
    hp.tasks.register(spec, replace=True)
    rows = hp.sweep.run_job(hp.sweep.Job("tissue_paper_test", "MobileNetV3", 2.0, 30, 0,
                                         "paper"))
    frame = pd.DataFrame(rows)
    assert (frame["x"] == 0.25).all() and (frame["modality"] == "image").all()
    assert {"all classes · predicted", "Podocytes · predicted"} <= set(frame["signal"])
    assert frame["dataset"].iloc[0] == "tissuemnist"
    curves = hp.sweep.histories(frame.assign(task="t", model="m", level=2.0, size=30, seed=0))
    assert curves["epoch"].tolist() == list(range(1, 31))
    assert frame["mi"].between(0, 3).all()


def test_image_tasks_are_registered_with_their_axes():
    names = hp.tasks.names(modality="image")
    assert {"tissuemnist_gaussian", "tissuemnist_pixelate", "caltech101_gaussian",
            "caltech101_pixelate"} <= set(names)
    spec = hp.tasks.get("tissuemnist_gaussian")
    assert spec.supervised and spec.x_name == "1/sigma"
    paper = hp.profiles.get("paper")
    assert len(spec.levels(None, paper)) == 10
    assert hp.tasks.get("tissuemnist_pixelate").levels(None, paper) == (
        2, 4, 7, 8, 14, 16, 28, 32, 56, 112, 224)
    quick_images = ImageData(np.zeros((2, 1, 28, 28)), labels=[0, 1])
    assert hp.tasks.get("tissuemnist_pixelate").levels(quick_images, hp.profiles.get("quick")) == (
        1, 2, 4, 7, 14, 28)
    model = hp.tasks.get("caltech101_pixelate").make_model("MobileNetV2", profile="paper", seed=0)
    assert model.config.epochs == 10 and model.config.lr == 1e-4


def test_pretrained_weights_refuse_an_unpinned_file(tmp_path, monkeypatch):
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump({"entries": {"torchvision/mobilenet_v3_small_imagenet1k_v1": {
        "path": "w.pth", "url": None, "sha256": None, "manual": True}}}))
    monkeypatch.setenv(hdata.MANIFEST_ENV, str(path))
    monkeypatch.setenv(hdata.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(hdata.MIRROR_ENV, raising=False)
    with pytest.raises(hdata.DataUnavailableError, match="mobilenet_v3_small"):
        make_model("MobileNetV3", profile="paper")._build(8)


def test_published_counterparts_use_the_probe_signal_names():
    tissue = hp.tasks.published_points("tissuemnist_pixelate")
    assert "all classes" in set(tissue["signal"]) and "Podocytes" in set(tissue["signal"])
    assert np.allclose(tissue["x"], 1 / tissue["level"] ** 2)
    caltech = hp.tasks.published_points("caltech101_gaussian")
    assert caltech["signal"].str.endswith("· predicted").all()
