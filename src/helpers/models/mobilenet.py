"""MobileNet image classifiers (torchvision), fine-tuned with labels, as the paper's image models.

The paper (Supplementary S.II.5, Table S4) fine-tunes ImageNet-pretrained torchvision MobileNets
with a new classification head and probes a layer of the trained network:

=================  ============================================================================
TissueMNIST        ``mobilenet_v3_small`` (IMAGENET1K_V1), head ``classifier[3]`` → 8 classes,
                   Adam lr 1e-3, batch 512, 30 epochs, cross-entropy; representation = the
                   1024-d output of ``classifier[0]`` as the authors' forward hook reads it:
                   their hook keeps ``output.detach()``, which the in-place Hardswish that
                   follows overwrites, so the probed vector is ``Hardswish(classifier[0](x))``
Caltech101         ``mobilenet_v2`` (IMAGENET1K_V1; the paper's text says V3, the authors'
                   notebooks use V2), head ``classifier[1]`` → 101 outputs (their notebooks keep
                   101 although only 5 classes occur), Adam lr 1e-4, batch 128, 5 epochs
                   (Gaussian) or 10 (resolution); MI from the predicted labels
=================  ============================================================================

Profiles: ``smoke`` and ``quick`` train MobileNetV3-Small *from scratch* (no pretrained weights
are reachable on the book's machines) on small grey images for a few epochs on CPU;
``paper`` loads the ImageNet weights through :func:`helpers.data.fetch` (manifest entries
``torchvision/mobilenet_v3_small_imagenet1k_v1`` and ``torchvision/mobilenet_v2_imagenet1k_v1``,
never a hub call) and uses Table S4.  A one-channel image is repeated to the three input
channels on the fly (the authors repeat TissueMNIST's grey channel).  Training runs on the GPU
when there is one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._torch import torch_threads
from ._common import BaseModel, NotFittedError, check_profile

__all__ = [
    "MobileNetConfig",
    "MobileNetV2Config",
    "MobileNetV3Model",
    "MobileNetV2Model",
    "WEIGHTS",
]

#: Manifest entries of the ImageNet weights (torchvision IMAGENET1K_V1) per architecture.
WEIGHTS = {
    "v3_small": "torchvision/mobilenet_v3_small_imagenet1k_v1",
    "v2": "torchvision/mobilenet_v2_imagenet1k_v1",
}
_EMBED_DIM = {"v3_small": 1024, "v2": 1280}


#: What each (profile, architecture) sets of :class:`MobileNetConfig`: ``paper`` is Table S4
#: (V3) or the Caltech101 notebooks (V2); ``smoke`` and ``quick`` train from scratch on the CPU.
MOBILENET_PROFILES: dict[tuple[str, str], dict] = {
    **{("smoke", arch): {"lr": 3e-3, "batch_size": 64, "epochs": 1, "n_threads": 1,
                         "bn_recalibrate": 256} for arch in _EMBED_DIM},
    **{("quick", arch): {"lr": 3e-3, "batch_size": 64, "epochs": 2, "n_threads": 1,
                         "bn_recalibrate": 1024} for arch in _EMBED_DIM},
    ("paper", "v3_small"): {"pretrained": True, "lr": 1e-3, "batch_size": 512, "epochs": 30},
    ("paper", "v2"): {"pretrained": True, "n_outputs": 101, "lr": 1e-4, "batch_size": 128,
                      "epochs": 5},
}


@dataclass(frozen=True)
class MobileNetConfig:
    """Hyperparameters of a MobileNet classifier.

    Attributes
    ----------
    arch
        ``"v3_small"`` (torchvision ``mobilenet_v3_small``) or ``"v2"`` (``mobilenet_v2``).
    pretrained
        Start from the ImageNet weights of manifest entry ``weights_key`` (default: the
        architecture's entry in :data:`WEIGHTS`); ``False`` trains from scratch.
    n_outputs
        Width of the new head; ``None``: the number of classes of the training labels.
    lr, batch_size, epochs, weight_decay
        Adam, cross-entropy, fixed number of epochs (no early stopping, as the paper).
    embed_batch_size
        Images per forward pass when embedding or predicting.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    n_threads
        torch CPU threads during fit/embed (``None``: unchanged).
    bn_recalibrate
        After the last epoch, re-estimate every batch-norm layer's running mean and variance
        on this many training images (an exact average, "precise BN"; 0: off).  torchvision's
        MobileNets update their running statistics with momentum 0.01, which a from-scratch
        run of a few hundred steps has not converged: evaluation-mode outputs are then
        garbage.  The paper's 30 epochs from ImageNet weights need none (``paper``: 0).
    """

    arch: str = "v3_small"
    pretrained: bool = False
    weights_key: str | None = None
    n_outputs: int | None = None
    lr: float = 1e-3
    batch_size: int = 512
    epochs: int = 30
    weight_decay: float = 0.0
    embed_batch_size: int = 1024
    device: str = "auto"
    n_threads: int | None = None
    bn_recalibrate: int = 0
    profile: str = "quick"
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str = "quick", *, seed: int = 0, arch: str = "v3_small"):
        """Settings of a profile; ``paper`` is Table S4 (V3) or the Caltech101 notebooks (V2)."""
        check_profile(profile)
        if arch not in _EMBED_DIM:
            msg = f"arch must be one of {sorted(_EMBED_DIM)}, got {arch!r}"
            raise ValueError(msg)
        return cls(arch=arch, **MOBILENET_PROFILES[profile, arch], profile=profile, seed=seed)


class _MobileNet(BaseModel):
    """Shared fit / embed / predict of the two architectures."""

    config_class = MobileNetConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        if self.config.arch not in _EMBED_DIM:
            msg = f"arch must be one of {sorted(_EMBED_DIM)}, got {self.config.arch!r}"
            raise ValueError(msg)
        self.classes_: list | None = None
        self.net_ = None

    # -- protocol ---------------------------------------------------------------------------
    def fit(self, data, *, y=None, val=None, y_val=None, progress: bool = True):
        """Train the classifier on the images of ``data``.

        Parameters
        ----------
        data
            :class:`~helpers.datasets.images.ImageData` (float32 ``N × C × H × W``).
        y
            Class of every training image (names or integer codes); default
            ``data.obs["label"]``.
        val
            Optional ImageData (labels ``y_val`` or its ``obs["label"]``); its loss and
            accuracy are recorded after every epoch in ``history_`` (the training curves).
        y_val
            Labels of ``val``, coded like ``y``.
        progress
            Show a progress bar over epochs.

        Returns
        -------
        The fitted model (``self``).
        """
        import torch

        x = _check_images(data, "data")
        classes, codes = _encode_labels(data, y)
        xv = yv = None
        if val is not None:
            xv = _check_images(val, "val")
            _, yv = _encode_labels(val, y_val, classes=classes)
        cfg = self.config
        n_out = cfg.n_outputs or len(classes)
        if n_out < len(classes):
            msg = f"n_outputs={n_out} is smaller than the {len(classes)} classes"
            raise ValueError(msg)
        device = _device(cfg.device)
        with torch_threads(cfg.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            net = self._build(n_out).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            loss_fn = torch.nn.CrossEntropyLoss()
            gen = torch.Generator().manual_seed(cfg.seed)
            xt = torch.from_numpy(x)
            yt = torch.from_numpy(codes)
            history = {k: [] for k in ("epoch", "train_loss", "train_accuracy", "val_loss",
                                       "val_accuracy", "seconds")}
            epochs = range(cfg.epochs)
            if progress:
                from tqdm.auto import tqdm

                epochs = tqdm(epochs, desc=f"{self.name} epochs", leave=False)
            for epoch in epochs:
                start = time.perf_counter()
                net.train()
                order = torch.randperm(len(xt), generator=gen)
                total, correct, seen = 0.0, 0, 0
                for i in range(0, len(order), cfg.batch_size):
                    idx = order[i: i + cfg.batch_size]
                    if len(idx) < 2:  # batch norm needs two samples
                        continue
                    xb = _to_input(xt[idx], device)
                    yb = yt[idx].to(device)
                    opt.zero_grad(set_to_none=True)
                    out = net(xb)
                    loss = loss_fn(out, yb)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                    correct += int((out.argmax(1) == yb).sum())
                    seen += len(idx)
                if cfg.bn_recalibrate and (xv is not None or epoch == cfg.epochs - 1):
                    _recalibrate_bn(net, xt, device, cfg.bn_recalibrate, cfg.embed_batch_size)
                history["epoch"].append(epoch + 1)
                history["train_loss"].append(total / max(seen, 1))
                history["train_accuracy"].append(correct / max(seen, 1))
                if xv is not None:
                    logits = self._forward(net, xv, device, cfg.embed_batch_size)[1]
                    vloss = float(loss_fn(torch.from_numpy(logits), torch.from_numpy(yv)))
                    history["val_loss"].append(vloss)
                    history["val_accuracy"].append(float(np.mean(logits.argmax(1) == yv)))
                else:
                    history["val_loss"].append(np.nan)
                    history["val_accuracy"].append(np.nan)
                history["seconds"].append(time.perf_counter() - start)
        self.net_ = net.eval()
        self.classes_ = classes
        self.history_ = history
        self.n_train_ = len(x)
        return self

    def embed(self, data) -> np.ndarray:
        """The representation the paper probes, ``(n_images, 1024)`` for V3, 1280 for V2."""
        self._check_fitted()
        x = _check_images(data, "data")
        with torch_threads(self.config.n_threads):
            emb, _ = self._forward(self.net_, x, _device(self.config.device),
                                   self.config.embed_batch_size)
        return emb

    def predict(self, data) -> np.ndarray:
        """Predicted class index of every image (argmax of the head; an index beyond the
        training classes can occur only with a wider head, ``n_outputs``)."""
        self._check_fitted()
        x = _check_images(data, "data")
        with torch_threads(self.config.n_threads):
            _, logits = self._forward(self.net_, x, _device(self.config.device),
                                      self.config.embed_batch_size)
        return logits.argmax(1).astype(np.int64)

    def embed_predict(self, data) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`embed` and :meth:`predict` from one forward pass."""
        self._check_fitted()
        x = _check_images(data, "data")
        with torch_threads(self.config.n_threads):
            emb, logits = self._forward(self.net_, x, _device(self.config.device),
                                        self.config.embed_batch_size)
        return emb, logits.argmax(1).astype(np.int64)

    def fit_embed(self, data, *, y=None, val=None, progress: bool = True) -> np.ndarray:
        return self.fit(data, y=y, val=val, progress=progress).embed(data)

    @property
    def is_fitted(self) -> bool:
        return self.net_ is not None

    def _n_parameters(self) -> int:
        return sum(p.numel() for p in self.net_.parameters() if p.requires_grad)

    def describe(self) -> dict:
        """The settings and architecture facts a chapter quotes: ``epochs``, ``lr``,
        ``batch_size``, ``embed_dim`` (the probed layer's width) and ``bn_momentum``
        (torchvision's batch-norm momentum for this network, read from an untrained one).

        Examples
        --------
        >>> from helpers.models import make_model
        >>> facts = make_model("MobileNetV3", profile="quick").describe()
        >>> facts["embed_dim"], facts["bn_momentum"]
        (1024, 0.01)
        """
        import torch
        from torchvision import models

        cfg = self.config
        ctor = models.mobilenet_v3_small if cfg.arch == "v3_small" else models.mobilenet_v2
        net = ctor(weights=None)
        momentum = next(m.momentum for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
        return {"epochs": cfg.epochs, "lr": cfg.lr, "batch_size": cfg.batch_size,
                "embed_dim": _EMBED_DIM[cfg.arch], "bn_momentum": momentum}

    def _check_fitted(self) -> None:
        if self.net_ is None:
            msg = f"{self.name} model is not fitted yet: call .fit(data) first"
            raise NotFittedError(msg)

    # -- internals ----------------------------------------------------------------------------
    def _build(self, n_out: int):
        import torch
        from torchvision import models

        cfg = self.config
        ctor = models.mobilenet_v3_small if cfg.arch == "v3_small" else models.mobilenet_v2
        net = ctor(weights=None)
        if cfg.pretrained:
            from ..data import fetch

            key = cfg.weights_key or WEIGHTS[cfg.arch]
            state = torch.load(fetch(key), map_location="cpu", weights_only=True)
            try:
                net.load_state_dict(state)
            except RuntimeError as err:
                msg = f"weights of manifest entry {key!r} do not fit torchvision's {cfg.arch}: "
                msg += str(err)
                raise ValueError(msg) from err
        head = 3 if cfg.arch == "v3_small" else 1
        net.classifier[head] = torch.nn.Linear(net.classifier[head].in_features, n_out)
        return net

    def _forward(self, net, x: np.ndarray, device, batch_size: int):
        """Embedding and logits of every image, in eval mode, in batches."""
        import torch

        grabbed = {}
        if self.config.arch == "v3_small":
            # the authors hook classifier[0] and keep ``output.detach()``, which shares memory
            # with the tensor that the next layer, Hardswish(inplace=True), overwrites: what
            # they probe is Hardswish(classifier[0](x)).  Read that explicitly.
            hook = net.classifier[1].register_forward_hook(
                lambda m, i, o: grabbed.__setitem__("z", o.detach().clone()))
        else:
            hook = net.classifier[1].register_forward_hook(
                lambda m, i, o: grabbed.__setitem__("z", i[0].detach()))
        was_training = net.training
        net.eval()
        embs, logits = [], []
        try:
            with torch.no_grad():
                for i in range(0, len(x), batch_size):
                    out = net(_to_input(torch.from_numpy(x[i: i + batch_size]), device))
                    embs.append(grabbed["z"].float().cpu().numpy())
                    logits.append(out.float().cpu().numpy())
        finally:
            hook.remove()
            net.train(was_training)
        dim = _EMBED_DIM[self.config.arch]
        if not embs:
            return np.zeros((0, dim), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(embs), np.concatenate(logits)


class MobileNetV3Model(_MobileNet):
    """MobileNetV3-Small classifier; embeds with the 1024-d ``classifier[0]`` output (after
    the in-place Hardswish, as the authors' hook reads it).

    Examples
    --------
    >>> import numpy as np
    >>> from helpers.datasets.images import ImageData
    >>> from helpers.models import make_model
    >>> rng = np.random.default_rng(0)
    >>> data = ImageData(rng.random((16, 1, 16, 16), dtype=np.float32), labels=[0, 1] * 8)
    >>> model = make_model("MobileNetV3", profile="smoke").fit(data, progress=False)
    >>> model.embed(data).shape, model.predict(data).shape
    ((16, 1024), (16,))
    """

    name = "MobileNetV3"


@dataclass(frozen=True)
class MobileNetV2Config(MobileNetConfig):
    """:class:`MobileNetConfig` with ``arch="v2"``; ``paper`` = the Caltech101 notebooks."""

    arch: str = "v2"

    @classmethod
    def for_profile(cls, profile: str = "quick", *, seed: int = 0, arch: str = "v2"):
        return super().for_profile(profile, seed=seed, arch=arch)


class MobileNetV2Model(_MobileNet):
    """MobileNetV2 classifier (the authors' Caltech101 notebooks); embeds the 1280-d pooled
    features that enter the head."""

    name = "MobileNetV2"
    config_class = MobileNetV2Config


def _recalibrate_bn(net, xt, device, n_images: int, batch_size: int) -> None:
    """Running statistics of every batch norm as the exact mean over ``n_images`` images."""
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    try:
        with torch.no_grad():
            for i in range(0, min(n_images, len(xt)), batch_size):
                net(_to_input(xt[i: min(i + batch_size, n_images)], device))
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_input(xb, device):
    xb = xb.to(device, non_blocking=True)
    if xb.shape[1] == 1:  # grey → the three input channels, as the authors repeat TissueMNIST
        xb = xb.expand(-1, 3, -1, -1)
    return xb


def _check_images(data, name: str) -> np.ndarray:
    images = getattr(data, "images", None)
    if images is None:
        msg = (f"{name} must be an ImageData (float32 N x C x H x W in .images), "
               f"got {type(data).__name__}")
        raise TypeError(msg)
    x = np.ascontiguousarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        msg = f"{name}.images must be N x C x H x W with C = 1 or 3, got shape {x.shape}"
        raise ValueError(msg)
    if len(x) < 2:
        msg = f"{name} has {len(x)} image(s); at least 2 are needed"
        raise ValueError(msg)
    if not np.all(np.isfinite(x)):
        msg = f"{name}.images contains NaN or infinite values"
        raise ValueError(msg)
    return x


def _encode_labels(data, y, *, classes=None):
    """Class list and integer codes from ``y`` or ``data.obs['label']``."""
    import pandas as pd

    if y is None:
        if "label" not in getattr(data, "obs", {}):
            msg = "no labels: pass y= or give the data an obs['label'] column"
            raise ValueError(msg)
        col = data.obs["label"]
        cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
        names = list(cat.cat.categories)
        values = np.asarray(cat.astype(object))
    else:
        values = np.asarray(y)
        if values.shape != (len(data.images),):
            msg = f"y must have one label per image ({len(data.images)}), got shape {values.shape}"
            raise ValueError(msg)
        names = sorted(set(values.tolist()))
        if values.dtype.kind in "iu" and values.size:
            # integer codes (e.g. a sweep's category codes): keep every code up to the largest
            # one or the data's number of classes, so that a class absent from a small training
            # subset does not shift the indices of the others
            n_cat = 0
            col = getattr(data, "obs", {}).get("label") if hasattr(data, "obs") else None
            if col is not None and isinstance(col.dtype, pd.CategoricalDtype):
                n_cat = len(col.cat.categories)
            if values.min() < 0:
                msg = f"integer labels must be non-negative, got {values.min()}"
                raise ValueError(msg)
            names = list(range(max(int(values.max()) + 1, n_cat)))
    if classes is None:
        classes = names
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({v for v in values.tolist() if v not in lookup}, key=str)
    if unknown:
        msg = f"labels {unknown[:5]} are not among the training classes"
        raise ValueError(msg)
    return list(classes), np.fromiter((lookup[v] for v in values.tolist()), np.int64,
                                      len(values))
