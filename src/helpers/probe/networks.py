"""The paired encoders regularised by cross-prediction, and their training."""

from __future__ import annotations

import copy

import numpy as np

__all__ = [
    "standardise",
    "build",
    "train",
]


def standardise(a: np.ndarray, ref: np.ndarray, clip: float = 10.0):
    mean = ref.mean(axis=0)
    sd = ref.std(axis=0)
    keep = sd > 1e-12 * np.maximum(np.abs(mean), 1.0)
    out = (a[:, keep] - mean[keep]) / sd[keep]
    return np.clip(out, -clip, clip), keep


def build(torch, dim_x, dim_y, kx, ky, hidden, y_kind, n_classes, dropout=0.0, in_drop=0.0):
    nn = torch.nn

    class Encoder(nn.Module):
        """MLP with a linear skip path: z = W x + MLP(x)."""

        def __init__(self, d_in, d_out):
            super().__init__()
            self.drop = nn.Dropout(in_drop)
            self.lin = nn.Linear(d_in, d_out)
            self.mlp = nn.Sequential(
                nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden // 2), nn.GELU(), nn.Dropout(dropout),
                nn.Linear(hidden // 2, d_out),
            )

        def forward(self, v):
            v = self.drop(v)
            return self.lin(v) + self.mlp(v)

    def decoder(d_in, d_out):
        return nn.Sequential(nn.Linear(d_in, hidden // 2), nn.GELU(), nn.Linear(hidden // 2, d_out))

    class Paired(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc_x = Encoder(dim_x, kx)
            self.dec_x = decoder(kx, dim_x)
            if y_kind == "categorical":
                self.cross_xy = nn.Linear(kx, n_classes)
            else:
                self.cross_xy = nn.Linear(kx, dim_y)
            self.encode_y = ky is not None
            if self.encode_y:
                self.enc_y = Encoder(dim_y, ky)
                self.dec_y = decoder(ky, dim_y)
                self.cross_yx = nn.Linear(ky, dim_x)

        def latents(self, xb, yb):
            zx = self.enc_x(xb)
            zy = self.enc_y(yb) if self.encode_y else None
            return zx, zy

        def loss(self, xb, yb, alpha, lam, parts=False):
            f = torch.nn.functional
            ax, ay = alpha if isinstance(alpha, tuple) else (alpha, alpha)
            zx, zy = self.latents(xb, yb)
            auto = ax * f.mse_loss(self.dec_x(zx), xb)
            if y_kind == "categorical":
                cross = f.cross_entropy(self.cross_xy(zx), yb)
            else:
                cross = f.mse_loss(self.cross_xy(zx), yb)
            if self.encode_y:
                auto = auto + ay * f.mse_loss(self.dec_y(zy), yb)
                cross = cross + f.mse_loss(self.cross_yx(zy), xb)
            if parts:
                return auto, cross
            return auto + lam * cross

    return Paired()


def train(torch, model, xt, yt, xv, yv, *, lr, batch_size, max_epochs, patience, alpha, lam,
           weight_decay, gen, progress, monitor="total"):
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.3, patience=max(patience // 3, 1), threshold=1e-4
    )
    n = len(xt)
    best, best_state, best_epoch, bad = np.inf, None, -1, 0
    history = {"train_loss": [], "val_loss": [], "val_cross": []}
    epochs = range(max_epochs)
    if progress:
        from ..progress import bar

        epochs = bar(epochs, desc="latent MI", leave=False)
    for epoch in epochs:
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            b = perm[start : start + batch_size]
            loss = model.loss(xt[b], yt[b], alpha, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        model.eval()
        with torch.no_grad():
            v_auto, v_cross = model.loss(xv, yv, alpha, lam, parts=True)
        val_total = (v_auto + lam * v_cross).item()
        val = v_cross.item() if monitor == "cross" else val_total
        history["train_loss"].append(total / n)
        history["val_loss"].append(val_total)
        history["val_cross"].append(v_cross.item())
        sched.step(val)
        if best_state is None or val < best - 1e-5 * abs(best):
            best, best_epoch, bad = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return history, best_epoch
