r"""Box 1 and Supplementary S.IV–S.V made executable: the Gaussian noise-propagation model.

The model (Supplementary S.IV): an auxiliary signal :math:`Y \sim N(0, \Sigma_Y)`, the true
state :math:`X = Y + U` with :math:`U \sim N(0, \Sigma_U)`, and a noisy measurement
:math:`Z = \eta X + N(0, I)` of signal-to-noise power :math:`x = \eta^2`.  Then

.. math::

    I(Y; Z) = \tfrac12 \log_2 \frac{\det(\Sigma_Y + \Sigma_U + I/x)}{\det(\Sigma_U + I/x)},

which in the scalar case is Eq. 1 with :math:`\bar u = 1/\sigma_U^2` and
:math:`I_\max = \tfrac12\log_2(1 + \sigma_Y^2/\sigma_U^2)`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "channel_mi",
    "gaussian_mi_from_samples",
    "noise_law_parameters",
    "poisson_power_snr",
    "sample_channel",
]


def _as_cov(c, dim=None):
    c = np.atleast_2d(np.asarray(c, dtype=float))
    if c.shape == (1, 1) and dim is not None:
        c = c[0, 0] * np.eye(dim)
    if c.shape[0] != c.shape[1]:
        msg = "A covariance must be square."
        raise ValueError(msg)
    return c


def channel_mi(x, cov_y, cov_u):
    """Exact :math:`I(Y;Z)` in bits of the Gaussian channel at signal-to-noise power ``x``.

    Parameters
    ----------
    x
        Signal-to-noise power :math:`\\eta^2` (scalar or array), positive.
    cov_y, cov_u
        Covariances of the signal and of the non-signal variation (scalars for the 1-D case).

    Examples
    --------
    >>> round(float(channel_mi(1e12, 3.0, 1.0)), 6)  # I_max = 1/2 log2(1 + 3)
    1.0
    """
    cov_y = _as_cov(cov_y)
    cov_u = _as_cov(cov_u, cov_y.shape[0])
    eye = np.eye(cov_y.shape[0])
    x = np.asarray(x, dtype=float)
    out = np.empty(x.shape)
    for idx, xi in np.ndenumerate(x):
        _, num = np.linalg.slogdet(cov_y + cov_u + eye / xi)
        _, den = np.linalg.slogdet(cov_u + eye / xi)
        out[idx] = 0.5 * (num - den) / np.log(2.0)
    return out if out.ndim else float(out)


def noise_law_parameters(sigma_y2: float, sigma_u2: float) -> tuple[float, float]:
    """``(u_bar, i_max)`` of the scalar channel: ``1/σ_U²`` and ``½ log2(1 + σ_Y²/σ_U²)``."""
    return 1.0 / sigma_u2, 0.5 * np.log2(1.0 + sigma_y2 / sigma_u2)


def sample_channel(n: int, x: float, cov_y, cov_u, *, seed: int = 0):
    """Draw ``n`` samples ``(y, z)`` of the channel at signal-to-noise power ``x``."""
    rng = np.random.default_rng(seed)
    cov_y = _as_cov(cov_y)
    cov_u = _as_cov(cov_u, cov_y.shape[0])
    d = cov_y.shape[0]
    y = rng.multivariate_normal(np.zeros(d), cov_y, size=n)
    u = rng.multivariate_normal(np.zeros(d), cov_u, size=n)
    z = np.sqrt(x) * (y + u) + rng.standard_normal((n, d))
    return y, z


def gaussian_mi_from_samples(a, b) -> float:
    """Mutual information (bits) of jointly Gaussian samples from their sample covariance.

    :math:`\\tfrac12\\log_2(\\det\\Sigma_{aa}\\det\\Sigma_{bb}/\\det\\Sigma)`: the exact MI of
    the Gaussian with the samples' covariance.
    """
    from .groundtruth import gaussian_mi

    a = np.asarray(a, dtype=float).reshape(len(a), -1)
    b = np.asarray(b, dtype=float).reshape(len(b), -1)
    return gaussian_mi(np.cov(np.hstack([a, b]), rowvar=False), a.shape[1])


def poisson_power_snr(mean_umis, *, n_cells: int = 20000, profile=None, seed: int = 0):
    """Empirical power SNR (mean²/variance) of Poisson counts at several depths (Supp. S.V).

    Cells share one expression profile; each cell's counts are Poisson with rate
    ``depth × profile``.  For a Poisson count the power ratio of signal (mean) to noise
    (fluctuation) is ``λ²/λ = λ``, so the SNR of the total count grows linearly with UMIs per
    cell.

    Returns
    -------
    numpy.ndarray
        Empirical ``mean² / variance`` of the total counts per cell, one per depth.
    """
    rng = np.random.default_rng(seed)
    if profile is None:
        profile = rng.dirichlet(np.full(200, 0.3))
    out = []
    for depth in np.atleast_1d(mean_umis):
        counts = rng.poisson(depth * profile, size=(n_cells, profile.size))
        total = counts.sum(axis=1)
        out.append(total.mean() ** 2 / total.var())
    return np.asarray(out)
