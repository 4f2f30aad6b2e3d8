"""The learned-critic paths: critics trained with InfoNCE, read on held-out pairs.

Information that no linear map exposes (a scale shared by ``X`` and ``Y``, as in a
multivariate Student-t or over-dispersed counts; a mixture of opposite dependences; a signal
bent by a nonlinear encoder) is invisible to canonical pairs read one at a time.  These paths
learn a critic ``s(x, y)`` by the InfoNCE objective (van den Oord et al. 2018; Poole et al.
2019) on the fitting part, stop on the validation part's InfoNCE, and read the MI on
held-out pairs as

``I_NCE = mean_i [s(x_i, y_i) − log (1/K) Σ_j exp s(x_i, y_j)]``

over ``K`` held-out samples: a lower bound on the MI for any critic the samples did not
train, tight when ``s`` is the log density ratio up to a function of ``x`` and ``K ≫ 2^I``.
Its pointwise terms are the per-sample contributions.

Three paths (:data:`CRITIC_PATHS`), trained only where :func:`scale_test` finds dependence
that canonical pairs miss:

=========  ========================================================================
``radial`` a separable critic ``f(x) · g(y)`` on each side's radii (log mean squares):
           all the information of an uncorrelated Student-t
``critic`` a separable critic on the Gaussianised columns (or, above 10 columns, the
           leading canonical variates) with the radii
``joint``  a joint critic ``h(f(x) + g(y))`` on the radii and the 3 leading canonical
           variates: a Student-t whose halves are also correlated
=========  ========================================================================

Inputs are Gaussianised per column first (:func:`gaussianise`: empirical CDF of the fitting
part, then the normal quantile), which removes heavy marginal tails and any monotone warp of
a coordinate without losing information.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = [
    "CRITIC_PATHS",
    "Critic",
    "FittedCritic",
    "feature_sets",
    "fit_critics",
    "gaussianise",
    "nce_pmi",
    "scale_test",
    "train_critic",
]

#: The critic paths, as named in ``ProbeResult.params["latent_paths"]``: (name, feature set,
#: critic kind, training settings).
_PATHS = (
    ("radial", "radial", "separable", {}),
    ("critic", "full", "separable", {}),
    ("joint", "joint", "joint", {"batch_size": 64, "embed": 32}),
)
CRITIC_PATHS = tuple(p[0] for p in _PATHS)

#: ``scale_test`` z above which ``critic="auto"`` trains the critics.
SCALE_Z = 3.0

_LOG2 = np.log(2.0)


def gaussianise(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Map every column through the empirical CDF of ``ref`` and the normal quantile.

    Monotone per column (ties share a value), so lossless for the MI; values beyond the
    range of ``ref`` land in its outermost quantiles.

    Examples
    --------
    >>> ref = np.array([[1.0], [2.0], [3.0], [4.0]])
    >>> np.round(gaussianise(np.array([[0.0], [2.5], [9.0]]), ref).ravel(), 3)
    array([-1.15,  0.  ,  1.15])
    """
    a = np.asarray(a, dtype=float)
    ref = np.asarray(ref, dtype=float)
    n = ref.shape[0]
    out = np.empty_like(a)
    for j in range(a.shape[1]):
        srt = np.sort(ref[:, j])
        lo = np.searchsorted(srt, a[:, j], side="left")
        hi = np.searchsorted(srt, a[:, j], side="right")
        rank = np.clip((lo + hi) / 2.0, 0.5, n - 0.5)  # mid-rank; ties share one value
        out[:, j] = stats.norm.ppf(rank / n)
    return out


def nce_pmi(scores: np.ndarray) -> np.ndarray:
    """Pointwise InfoNCE terms (bits) of a ``(K, K)`` critic matrix ``s[i, j] = s(x_i, y_j)``.

    ``s_ii − logsumexp_j s_ij + log K``: their mean is the InfoNCE bound.

    Examples
    --------
    >>> round(float(nce_pmi(np.zeros((4, 4))).mean()), 6)  # a constant critic: no information
    0.0
    """
    k = scores.shape[0]
    return (np.diag(scores) - special.logsumexp(scores, axis=1) + np.log(k)) / _LOG2


class Critic:
    """A trained critic: ``scores(x, y)`` is the ``(K, K)`` matrix of ``s(x_i, y_j)``."""

    def __init__(self, torch, model):
        self._torch, self._model = torch, model

    def _tensors(self, x, y):
        torch = self._torch
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)))

    def scores(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            return self._model.scores(*self._tensors(x, y)).double().numpy()

    def pmi(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Pointwise InfoNCE terms (bits) on these held-out pairs."""
        return nce_pmi(self.scores(x, y))

    def embed(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The critic's embeddings of each side (its towers' outputs)."""
        with self._torch.no_grad():
            fx, gy = self._model.towers(*self._tensors(x, y))
        return fx.double().numpy(), gy.double().numpy()


def _build(torch, dim_x, dim_y, hidden, embed, kind):
    """``"separable"``: ``s = f(x) · g(y)``, towers with a linear skip;
    ``"joint"``: ``s = h(f(x) + g(y))``, an MLP ``h`` on the sum of the towers' outputs, which
    can represent a log density ratio that is no low-rank sum of products (a Student-t's
    ``log(1 + Q(x, y)/ν)``); its cost grows with ``K²·embed²``, so it gets few inputs."""
    nn = torch.nn

    class Tower(nn.Module):
        def __init__(self, d_in):
            super().__init__()
            self.lin = nn.Linear(d_in, embed)
            self.mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(),
                                     nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, embed))

        def forward(self, v):
            return self.lin(v) + self.mlp(v)

    class Separable(nn.Module):
        def __init__(self):
            super().__init__()
            self.f, self.g = Tower(dim_x), Tower(dim_y)

        def towers(self, xb, yb):
            return self.f(xb), self.g(yb)

        def scores(self, xb, yb):
            fx, gy = self.towers(xb, yb)
            return fx @ gy.T

    class Joint(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(nn.Linear(dim_x, hidden), nn.SiLU(), nn.Linear(hidden, embed))
            self.g = nn.Sequential(nn.Linear(dim_y, hidden), nn.SiLU(), nn.Linear(hidden, embed))
            self.h = nn.Sequential(nn.SiLU(), nn.Linear(embed, embed), nn.SiLU(),
                                   nn.Linear(embed, 1))

        def towers(self, xb, yb):
            return self.f(xb), self.g(yb)

        def scores(self, xb, yb, block: int = 256):
            fx, gy = self.towers(xb, yb)
            rows = [self.h(fx[i:i + block, None, :] + gy[None, :, :]).squeeze(-1)
                    for i in range(0, fx.shape[0], block)]  # bounded memory for large K
            return torch.cat(rows, 0)

    return Separable() if kind == "separable" else Joint()


def _nce_loss(torch, s):
    labels = torch.arange(s.shape[0])
    f = torch.nn.functional
    return 0.5 * (f.cross_entropy(s, labels) + f.cross_entropy(s.T, labels))


def train_critic(torch, x, y, fit_idx, val_idx, *, seed, kind="separable", hidden=64, embed=16,
                 lr=2e-3, batch_size=256, max_epochs=200, patience=20, weight_decay=1e-4):
    """Train a critic on ``fit_idx`` and stop on ``val_idx``'s InfoNCE (best epoch kept).

    ``kind``: ``"separable"`` or ``"joint"`` (see :func:`_build`).  Symmetric InfoNCE over
    the batch (rows and columns), Adam, early stopping after ``patience`` epochs without a
    better validation bound.

    Returns
    -------
    critic, history
        The :class:`Critic` and the validation InfoNCE (bits) per epoch.
    """
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    model = _build(torch, x.shape[1], y.shape[1], hidden, embed, kind)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    tx = torch.from_numpy(np.ascontiguousarray(x[fit_idx], dtype=np.float32))
    ty = torch.from_numpy(np.ascontiguousarray(y[fit_idx], dtype=np.float32))
    vx = torch.from_numpy(np.ascontiguousarray(x[val_idx], dtype=np.float32))
    vy = torch.from_numpy(np.ascontiguousarray(y[val_idx], dtype=np.float32))
    n = tx.shape[0]
    bs = min(batch_size, n)
    best, best_state, since, history = -np.inf, None, 0, []
    for _ in range(max_epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - bs + 1, bs):
            idx = order[start:start + bs]
            opt.zero_grad()
            loss = _nce_loss(torch, model.scores(tx[idx], ty[idx]))
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(nce_pmi(model.scores(vx, vy).double().numpy()).mean())
        history.append(val)
        if val > best + 1e-4:
            best, best_state, since = val, copy.deepcopy(model.state_dict()), 0
        else:
            since += 1
            if since >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return Critic(torch, model), np.array(history)


def _zscore(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.clip((a - ref.mean(axis=0)) / (ref.std(axis=0) + 1e-12), -10.0, 10.0)


def _robust(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    med = np.median(ref, axis=0)
    mad = np.median(np.abs(ref - med), axis=0)
    return (a - med) / np.where(mad > 1e-12, mad, 1.0)


def _log_radius(a: np.ndarray, fit_idx: np.ndarray) -> np.ndarray:
    r = np.log(np.mean(a**2, axis=1, keepdims=True) + 1e-6)
    return _zscore(r, r[fit_idx])


def scale_test(gx: np.ndarray, gy: np.ndarray) -> float:
    """z of the dependence between the squared radii beyond what a Gaussian would show.

    ``gx``, ``gy``: Gaussianised columns (one part of the samples).  In whitened
    coordinates of jointly Gaussian data with canonical correlations ``ρ_i``,
    ``corr(‖x‖², ‖y‖²) = Σ ρ_i² / sqrt(dx · dy)``; a shared scale (heavy tails), a mixture of
    opposite dependences or a bend of the signal makes the radii depend more than their
    linear correlations imply.  Returns the Fisher z of the observed minus implied
    correlation: large (> 3) where the canonical pairs miss information.

    Examples
    --------
    >>> from helpers import groundtruth as gt
    >>> x, y, _ = gt.sparse_gaussian(3000, dim_x=5, dim_y=5)
    >>> abs(scale_test(x, y)) < 3
    True
    >>> x, y, _ = gt.student_t(3000, dim_x=5, dim_y=5, df=3)
    >>> scale_test(gaussianise(x, x), gaussianise(y, y)) > 3
    True
    """
    from .linear import cca

    n = len(gx)
    ma, wa, mb, wb, rho = cca(gx, gy)
    ux = (gx - ma) @ _whitener(gx - ma)
    uy = (gy - mb) @ _whitener(gy - mb)
    rx, ry = (ux**2).sum(axis=1), (uy**2).sum(axis=1)
    observed = float(np.corrcoef(rx, ry)[0, 1])
    implied = float(np.sum(rho**2) / np.sqrt(ux.shape[1] * uy.shape[1]))
    z_obs = np.arctanh(np.clip(observed, -0.999, 0.999))
    z_imp = np.arctanh(np.clip(implied, -0.999, 0.999))
    return float((z_obs - z_imp) * np.sqrt(n - 3))


def _whitener(a0: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a0.T @ a0 / len(a0))
    keep = w > 1e-8 * max(w.max(), 1e-300)
    return v[:, keep] / np.sqrt(w[keep])


def feature_sets(raw: np.ndarray, g: np.ndarray, canon: np.ndarray, fit_idx: np.ndarray,
                 *, low_dims: int = 10, joint_canonical: int = 3) -> dict[str, np.ndarray]:
    """The critic's inputs for one side: ``"radial"``, ``"full"`` and ``"joint"``.

    ``radial``: the log mean square of the robustly scaled raw columns and of the
    Gaussianised ones (two summaries of a shared scale); ``full``: these plus every
    Gaussianised column where there are at most ``low_dims`` of them, or else the leading
    canonical variates ``canon`` (fewer inputs, so a few thousand samples can train the
    critic: on a 2-pair Student-t, 10 × 10, ν = 3, 4.34 bits, N = 5,000, the Gaussianised
    columns read 3.68 and these with the robustly scaled ones beside them 3.23); ``joint``:
    the radii and the ``joint_canonical`` leading canonical variates, few enough for the
    joint critic.  Every feature is a function of the sample, so a critic on them
    reads no more than the MI of the inputs themselves.
    """
    rob = _robust(raw, raw[fit_idx])
    radial = np.hstack([_log_radius(rob, fit_idx), _log_radius(g, fit_idx)])
    if raw.shape[1] <= low_dims:
        full = np.hstack([radial, g])
    else:
        full = np.hstack([radial, canon])
    return {"radial": radial, "full": full,
            "joint": np.hstack([radial, canon[:, :joint_canonical]])}


@dataclass
class FittedCritic:
    """One trained critic path with its features for every sample."""

    name: str
    critic: Critic
    fx: np.ndarray
    fy: np.ndarray
    history: np.ndarray

    def pmi(self, idx: np.ndarray, *, block: int = 2048) -> np.ndarray:
        """Pointwise InfoNCE terms (bits) on the samples ``idx``, in consecutive blocks of at
        most ``block`` samples (each block its own ``K``; ``log2 K ≥ 10`` bits stays far above
        the information read, and the cost stays linear in ``len(idx)``)."""
        idx = np.asarray(idx)
        n_blocks = max(1, int(np.ceil(idx.size / block)))
        parts = np.array_split(idx, n_blocks)
        return np.concatenate([self.critic.pmi(self.fx[p], self.fy[p]) for p in parts])

    def embed(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.critic.embed(self.fx[idx], self.fy[idx])


def fit_critics(x: np.ndarray, y: np.ndarray, fit_idx: np.ndarray, val_idx: np.ndarray, *,
                seed: int, always: bool = False, n_threads: int | None = 1,
                canonical: int = 6) -> tuple[list[FittedCritic], float]:
    """Train the critic paths where :func:`scale_test` asks for them (or ``always``).

    ``x``, ``y``: the inputs without constant columns (``x`` possibly projected).  Returns the
    trained paths (none where the test does not fire) and the test's z.
    """
    import torch

    from .._torch import torch_threads
    from .linear import cca

    gx, gy = gaussianise(x, x[fit_idx]), gaussianise(y, y[fit_idx])
    z = scale_test(gx[fit_idx], gy[fit_idx])
    if not (always or z > SCALE_Z):
        return [], z
    ma, wa, mb, wb, _ = cca(gx[fit_idx], gy[fit_idx], g=0.3)
    fx = feature_sets(x, gx, (gx - ma) @ wa[:, :canonical], fit_idx)
    fy = feature_sets(y, gy, (gy - mb) @ wb[:, :canonical], fit_idx)
    out = []
    with torch_threads(n_threads), torch.random.fork_rng(devices=[]):
        for name, key, kind, settings in _PATHS:
            critic, history = train_critic(torch, fx[key], fy[key], fit_idx, val_idx,
                                           seed=seed, kind=kind, **settings)
            out.append(FittedCritic(name, critic, fx[key], fy[key], history))
    return out, z
