"""Image noise: additive Gaussian pixel noise and pixelation (tile averaging), on batches.

The paper degrades images in two ways (Supplementary S.I.4–5):

* **Gaussian noise** — i.i.d. :math:`\\mathcal N(0, \\sigma^2)` added to every pixel of every
  channel (no clipping; the authors add it after scaling pixels to [0, 1] for TissueMNIST
  and to [−1, 1] for Caltech101; a grey image repeated to three channels gets independent
  noise in each channel, as their ``torch.randn_like`` on the 3-channel tensor does);
* **pixelation** by a factor :math:`F` — every :math:`F \\times F` tile is replaced by its mean.
  Like ``torch.nn.functional.avg_pool2d(x, F, F)`` in the authors' TissueMNIST code and the
  tile loop of their Caltech101 notebook, only *whole* tiles are kept: an image of
  :math:`H \\times W` pixels becomes :math:`\\lfloor H/F \\rfloor \\times \\lfloor W/F \\rfloor`
  tile means and the partial tiles at the right and bottom edges are dropped.  The TissueMNIST
  pipeline then resizes the pooled image back to the input size (``transforms.Resize``,
  bilinear); the Caltech101 notebooks feed the small pooled image to the network.

The released tables put the noise level on different x-axes (the signal-to-noise power of
Eq. 1): TissueMNIST ``1/σ`` and ``1/F²``, Caltech101 ``1/σ²`` and ``1/F``.  :data:`X_AXES`
names them and :func:`x_value` applies one.  :class:`ImageCorruption` bundles a noise, its
x-axis and the resizing into the corruption shape every modality shares,
``corrupt(data, level, *, seed) -> (noisy, x)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "X_AXES",
    "check_images",
    "ImageCorruption",
    "gaussian",
    "pixelate",
    "x_value",
    "CORRUPTIONS",
]

#: The released x-axis conventions by name: level (σ or F) → signal-to-noise power x.
X_AXES = {
    "1/sigma": lambda level: 1.0 / level,
    "1/sigma^2": lambda level: 1.0 / level**2,
    "1/F": lambda level: 1.0 / level,
    "1/F^2": lambda level: 1.0 / level**2,
}


def x_value(level: float, name: str) -> float:
    """The released x-axis value of a noise level (``inf`` for a clean σ = 0).

    Examples
    --------
    >>> x_value(0.5, "1/sigma^2"), x_value(4, "1/F^2"), x_value(0.0, "1/sigma")
    (4.0, 0.0625, inf)
    """
    if name not in X_AXES:
        msg = f"unknown x-axis {name!r}; choose one of {sorted(X_AXES)}"
        raise ValueError(msg)
    level = float(level)
    if level < 0 or not np.isfinite(level):
        msg = f"noise level must be finite and non-negative, got {level}"
        raise ValueError(msg)
    if level == 0:
        return float("inf")
    return float(X_AXES[name](level))


def check_images(images, name: str = "images") -> np.ndarray:
    """``images`` as an array, checked to be a numeric ``N × C × H × W`` batch."""
    arr = np.asarray(images)
    if arr.ndim != 4:
        msg = f"{name} must be a batch N x C x H x W, got shape {arr.shape}"
        raise ValueError(msg)
    if arr.dtype.kind not in "biuf":
        msg = f"{name} must be numeric, got dtype {arr.dtype}"
        raise TypeError(msg)
    return arr


def gaussian(images, sigma: float, *, seed: int) -> np.ndarray:
    """Add i.i.d. Gaussian noise of standard deviation ``sigma`` to every pixel and channel.

    Parameters
    ----------
    images
        Batch ``N × C × H × W`` (any numeric dtype; the result is float32). Not modified.
    sigma
        Noise standard deviation in the units of the pixel values (≥ 0; 0 returns a copy).
    seed
        Seed of the noise; the same seed gives the same noise.

    Returns
    -------
    numpy.ndarray
        ``images + sigma * Z`` as float32, no clipping (as in the paper).

    Examples
    --------
    >>> x = np.zeros((2, 1, 4, 4), dtype=np.float32)
    >>> y = gaussian(x, 0.5, seed=0)
    >>> y.shape, y.dtype, bool(np.array_equal(y, gaussian(x, 0.5, seed=0)))
    ((2, 1, 4, 4), dtype('float32'), True)
    """
    arr = check_images(images)
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        msg = f"sigma must be finite and non-negative, got {sigma}"
        raise ValueError(msg)
    out = arr.astype(np.float32, copy=True)
    if sigma == 0:
        return out
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(out.shape, dtype=np.float32)
    noise *= np.float32(sigma)
    out += noise
    return out


def pixelate(images, factor: int, *, size=None, mode: str = "bilinear") -> np.ndarray:
    """Replace every whole ``factor × factor`` tile by its mean (average pooling).

    Parameters
    ----------
    images
        Batch ``N × C × H × W``. Not modified.
    factor
        Tile side ``F`` (a positive integer, at most ``min(H, W)``); 1 is the identity.
    size
        ``None`` (default): return the ``⌊H/F⌋ × ⌊W/F⌋`` tile means, partial edge tiles
        dropped (``avg_pool2d`` with stride ``F``, as the authors).  ``(h, w)`` or ``"same"``:
        resize the tile means to that size (``"same"``: back to ``H × W``), as the
        authors' TissueMNIST pipeline does with ``transforms.Resize``.
    mode
        Interpolation of the resize: ``"bilinear"`` (torchvision's ``Resize`` on tensors,
        antialiased; the authors' code) or ``"nearest"`` (each pixel takes the mean of its
        tile, the description of S.I.4).

    Returns
    -------
    numpy.ndarray
        float32 batch.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> pixelate(x, 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> pixelate(x, 2, size="same", mode="nearest")[0, 0, 0]
    array([2.5, 2.5, 4.5, 4.5], dtype=float32)
    >>> pixelate(np.ones((1, 1, 5, 5)), 2).shape  # the partial 5th row and column are dropped
    (1, 1, 2, 2)
    """
    arr = check_images(images)
    if isinstance(factor, bool) or not float(factor).is_integer() or factor < 1:
        msg = f"factor must be a positive integer, got {factor!r}"
        raise ValueError(msg)
    factor = int(factor)
    n, c, h, w = arr.shape
    if factor > min(h, w):
        msg = f"factor {factor} is larger than the images ({h} x {w})"
        raise ValueError(msg)
    if mode not in ("bilinear", "nearest"):
        msg = f"mode must be 'bilinear' or 'nearest', got {mode!r}"
        raise ValueError(msg)
    h2, w2 = h // factor, w // factor
    tiles = arr[:, :, : h2 * factor, : w2 * factor].astype(np.float32, copy=False)
    pooled = tiles.reshape(n, c, h2, factor, w2, factor).mean(axis=(3, 5), dtype=np.float64)
    pooled = pooled.astype(np.float32)
    if size is None:
        return pooled
    target = (h, w) if isinstance(size, str) and size == "same" else tuple(int(s) for s in size)
    if len(target) != 2 or min(target) < 1:
        msg = f"size must be None, 'same' or (height, width), got {size!r}"
        raise ValueError(msg)
    if target == (h2, w2):
        return pooled
    if mode == "nearest" and target[0] % h2 == 0 and target[1] % w2 == 0:
        return np.repeat(np.repeat(pooled, target[0] // h2, axis=2), target[1] // w2, axis=3)
    import torch
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    interp = InterpolationMode.BILINEAR if mode == "bilinear" else InterpolationMode.NEAREST
    resized = TF.resize(torch.from_numpy(pooled), list(target), interpolation=interp,
                        antialias=True)
    return resized.numpy().astype(np.float32, copy=False)


@dataclass(frozen=True)
class ImageCorruption:
    """A named image corruption in the shared shape ``corrupt(data, level, *, seed)``.

    Parameters
    ----------
    kind
        ``"gaussian"`` (level = σ; 0 is clean) or ``"pixelate"`` (level = tile side F; 1 is
        clean).
    x_axis
        Name in :data:`X_AXES` of the released x-axis reported for a level.
    resize
        Pixelation only: resize the tile means back to the input size (the TissueMNIST
        pipeline, ``True``) or pass the small pooled image on (the Caltech101 notebooks).
    mode
        Interpolation of that resize (see :func:`pixelate`).

    Calling it with an :class:`~helpers.datasets.images.ImageData` (or any object with
    ``.images`` and ``.copy()``) returns ``(noisy copy, x)``; ``data`` is never modified.

    Examples
    --------
    >>> from helpers.datasets.images import ImageData
    >>> data = ImageData(np.zeros((3, 1, 8, 8), np.float32), labels=[0, 1, 0])
    >>> noisy, x = CORRUPTIONS["tissuemnist_pixelate"](data, 4, seed=0)
    >>> noisy.images.shape, x
    ((3, 1, 8, 8), 0.0625)
    >>> noisy, x = CORRUPTIONS["caltech101_gaussian"](data, 0.1, seed=0)
    >>> round(x, 6), noisy is data
    (100.0, False)
    """

    kind: str
    x_axis: str
    resize: bool = True
    mode: str = "bilinear"

    def __post_init__(self):
        if self.kind not in ("gaussian", "pixelate"):
            msg = f"kind must be 'gaussian' or 'pixelate', got {self.kind!r}"
            raise ValueError(msg)
        if self.x_axis not in X_AXES:
            msg = f"unknown x-axis {self.x_axis!r}; choose one of {sorted(X_AXES)}"
            raise ValueError(msg)

    @property
    def level_name(self) -> str:
        """``"sigma"`` or ``"factor"``."""
        return "sigma" if self.kind == "gaussian" else "factor"

    @property
    def label(self) -> str:
        """The noise as figures name it: ``"Gaussian"`` or ``"Pixelation"``."""
        return "Gaussian" if self.kind == "gaussian" else "Pixelation"

    def apply(self, images, level, *, seed: int) -> np.ndarray:
        """The corruption on a bare ``N × C × H × W`` array."""
        if self.kind == "gaussian":
            return gaussian(images, level, seed=seed)
        return pixelate(images, level, size="same" if self.resize else None, mode=self.mode)

    def __call__(self, data, level, *, seed: int):
        if not hasattr(data, "images") or not hasattr(data, "copy"):
            msg = f"data must be an ImageData (with .images and .copy()), got {type(data).__name__}"
            raise TypeError(msg)
        noisy = data.copy()
        noisy.images = self.apply(data.images, level, seed=seed)
        return noisy, x_value(level, self.x_axis)


#: The paper's four image corruptions with the x-axes of its released tables.
CORRUPTIONS = {
    "tissuemnist_gaussian": ImageCorruption("gaussian", "1/sigma"),
    "tissuemnist_pixelate": ImageCorruption("pixelate", "1/F^2", resize=True),
    "caltech101_gaussian": ImageCorruption("gaussian", "1/sigma^2"),
    "caltech101_pixelate": ImageCorruption("pixelate", "1/F", resize=False),
}
