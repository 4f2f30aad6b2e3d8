"""``method="paper"``: the paper's estimator, ``latentmi`` 0.1.3, re-implemented."""

from __future__ import annotations

import time

import numpy as np

from .._torch import torch_threads
from .ksg import ksg_mi
from .result import ProbeResult

__all__ = [
    "paper_hidden",
    "build_paper",
    "paper_standardise",
    "estimate_paper",
]


def paper_hidden(d: int) -> int:
    """latentmi's first hidden width: 1024, or the power of two below ``d`` when ``d > 2048``."""
    return 1024 if d <= 2048 else int(2 ** np.floor(np.log2(d)))


def build_paper(torch, dim_x: int, dim_y: int, latent: int):
    """Paired autoencoders with cross-predictive decoders, shaped as in ``latentmi.models.AECross``.

    Encoders ``d → L → L/2 → L/4 → latent`` (LeakyReLU 0.2 after every layer, the latent
    included), decoders ``latent → L/4 → L/2 → L → d``, cross decoders the same with dropout
    0.5 before every linear layer; Xavier-uniform weights and zero biases.
    """
    nn = torch.nn

    def act():
        return nn.LeakyReLU(negative_slope=0.2)

    def encoder(d, width):
        return nn.Sequential(nn.Linear(d, width), act(), nn.Linear(width, width // 2), act(),
                             nn.Linear(width // 2, width // 4), act(),
                             nn.Linear(width // 4, latent), act())

    def decoder(d, width, drop):
        sizes = [latent, width // 4, width // 2, width]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += ([nn.Dropout(0.5)] if drop else []) + [nn.Linear(a, b), act()]
        layers += ([nn.Dropout(0.5)] if drop else []) + [nn.Linear(width, d)]
        return nn.Sequential(*layers)

    class PaperPaired(nn.Module):
        def __init__(self):
            super().__init__()
            lx, ly = paper_hidden(dim_x), paper_hidden(dim_y)
            self.enc_x, self.enc_y = encoder(dim_x, lx), encoder(dim_y, ly)
            self.dec_x, self.dec_y = decoder(dim_x, lx, False), decoder(dim_y, ly, False)
            self.cross_yx, self.cross_xy = decoder(dim_x, lx, True), decoder(dim_y, ly, True)
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)

        def latents(self, xb, yb):
            return self.enc_x(xb), self.enc_y(yb)

        def loss(self, xb, yb):
            mse = torch.nn.functional.mse_loss
            zx, zy = self.latents(xb, yb)
            auto = mse(self.dec_x(zx), xb) + mse(self.dec_y(zy), yb)
            cross = mse(self.cross_yx(zy), xb) + mse(self.cross_xy(zx), yb)
            return cross + auto  # lam = alpha = 1

    return PaperPaired()


def _train_paper(torch, model, xt, yt, xv, yv, *, lr, batch_size, max_epochs, patience, gen):
    """latentmi's training loop: Adam, early stopping on ``(xv, yv)``, no weights restored.

    The validation loss is the mean of the per-batch losses in training mode (dropout on),
    as in ``latentmi.lmi.train``.  latentmi's early stopper keeps a *reference* to the live
    ``state_dict`` rather than a copy, so "restoring the best weights" loads the current
    ones: the network used is the one at the stopping epoch, which this loop reproduces.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
    model.train()
    history = {"train_loss": [], "val_loss": []}
    best, best_epoch, bad = np.inf, -1, 0
    n, nv = len(xt), len(xv)
    for epoch in range(max_epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            b = perm[start : start + batch_size]
            loss = model.loss(xt[b], yt[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        with torch.no_grad():
            vperm = torch.randperm(nv, generator=gen)
            val = float(np.mean([
                model.loss(xv[vperm[s : s + batch_size]], yv[vperm[s : s + batch_size]]).item()
                for s in range(0, nv, batch_size)
            ]))
        history["train_loss"].append(total / n)
        history["val_loss"].append(val)
        if val < best:
            best, best_epoch, bad = val, epoch, 0
        else:
            bad += 1
            if bad >= patience:
                break
    model.eval()
    return history, best_epoch


def paper_standardise(a: np.ndarray) -> np.ndarray:
    """latentmi's scaling: z-score over all samples, constant columns to 0, clip at ±10."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.nan_to_num((a - a.mean(axis=0)) / a.std(axis=0))
    return np.clip(z, -10.0, 10.0)


def estimate_paper(x, kind, yarr, *, seed, train_idx, eval_idx, k, latent_dims, lr,
                    batch_size, max_epochs, patience, n_threads, t0):
    """``method="paper"`` of :func:`estimate_mi` (see there)."""
    import torch

    if kind == "categorical":
        yarr = np.eye(int(yarr.max()) + 1)[yarr]  # one-hot, every class, as the paper
    xs, ys = paper_standardise(x), paper_standardise(yarr)
    latent = max(latent_dims // 2, 1)
    with torch_threads(n_threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = build_paper(torch, xs.shape[1], ys.shape[1], latent)
        tx = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32))
        ty = torch.from_numpy(np.ascontiguousarray(ys, dtype=np.float32))
        tr, ev = torch.from_numpy(train_idx), torch.from_numpy(eval_idx)
        history, best_epoch = _train_paper(
            torch, model, tx[tr], ty[tr], tx[ev], ty[ev], lr=lr, batch_size=batch_size,
            max_epochs=max_epochs, patience=patience, gen=gen,
        )
        with torch.no_grad():
            zx_t, zy_t = model.latents(tx, ty)
        zx, zy = zx_t.numpy().astype(np.float64), zy_t.numpy().astype(np.float64)
    t_fit = time.perf_counter() - t0
    ex, ey = zx[eval_idx], zy[eval_idx]
    pmi = ksg_mi(ex, ey, k=k, seed=seed)
    t_total = time.perf_counter() - t0
    params = dict(method="paper", seed=seed, latent_dims=2 * latent, k=k, lr=lr,
                  batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                  n_threads=n_threads, epochs_run=len(history["val_loss"]))
    return ProbeResult(
        mi=float(np.mean(pmi)), pmi=pmi, train_idx=train_idx, val_idx=eval_idx,
        eval_idx=eval_idx, n_pairs=latent, mi_by_pairs=np.array([pmi.mean()]),
        canonical_corr=np.array([]), latent_x=zx, latent_y=zy, embedding_x=ex, embedding_y=ey,
        y_kind=kind, history=history, best_epoch=best_epoch,
        timings={"fit": t_fit, "ksg": t_total - t_fit, "total": t_total}, params=params,
    )
