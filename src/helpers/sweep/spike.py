"""The spike-sequence task's ingredients and its sweep (until the pipeline's ``sweep.run``).

The paper's sequence task (Supplementary S.I.6, S.II.6): SARS-CoV-2 spike sequences are
substituted at each noise level (train and test alike), an ESM2 model is fine-tuned on the noisy
training sequences, the noisy evaluation sequences are embedded, and the latent MI between the
embeddings and the signal is measured.  This module holds the pieces a task spec names:

===================  =====================================================================
:func:`load`         the data per profile (GISAID at ``paper``; nextstrain spike S1 otherwise)
:data:`SIGNAL`       the probed ``obs`` column per profile (``month`` / ``lineage``)
:func:`levels`       the substitution rates per profile
:data:`MODELS`       the ESM2 sizes per profile
:func:`eval_subset`  which sequences the probe sees per profile
:func:`run`          the sweep: one tidy row per (level, model, seed)
:func:`fit`          the noise law per model (``x = (1 − p)/p``)
:func:`stability`    ū, I_max and the substitution rates the curve tolerates, per model
===================  =====================================================================

:func:`run` is the small serial loop the chapter calls until ``helpers.sweep.run`` and
``helpers.tasks`` land; it writes the rows in the pipeline's tidy schema.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import laws
from ..datasets.sequences import SequenceData, load_gisaid, load_ncov_spike
from ..noise.sequences import corrupt, rates_for_x, substitution_grid, substitution_x
from .store import ResultsTable, package_versions, write_csv_atomic

__all__ = [
    "MODELS", "SIGNAL", "S1", "eval_subset", "fit", "levels", "load", "month_table", "run",
    "stability",
]

#: The S1 subunit (residues 1-685 with the signal peptide), which holds residue 614.
S1 = (1, 685)
#: The probed signal per profile (see :mod:`helpers.datasets.sequences` for why).
SIGNAL = {"smoke": "lineage", "quick": "lineage", "paper": "month"}
#: The models per profile.
MODELS = {
    "smoke": ("ESM2-8M",),
    "quick": ("ESM2-8M", "ESM2-35M"),
    "paper": ("ESM2-8M", "ESM2-35M", "ESM2-150M"),
}
_SMOKE_SEQUENCES = 160


def load(profile: str = "quick", *, seed: int = 0) -> SequenceData:
    """The task's data: the user's GISAID export at ``paper`` (:func:`load_gisaid`); the S1
    subunit of the nextstrain example spikes with a D614/G614 lineage at ``quick`` (and a
    seeded subset of :data:`_SMOKE_SEQUENCES` of them at ``smoke``)."""
    if profile == "paper":
        return load_gisaid()
    if profile not in ("smoke", "quick"):
        msg = f"profile must be 'smoke', 'quick' or 'paper', got {profile!r}"
        raise ValueError(msg)
    data = load_ncov_spike(residues=S1)
    data = data[np.flatnonzero(data.obs["lineage"].to_numpy() != "")]
    if profile == "smoke":
        keep = np.random.default_rng(seed).choice(len(data), _SMOKE_SEQUENCES, replace=False)
        data = data[np.sort(keep)]
    return data


def levels(data: SequenceData, profile: str) -> tuple[float, ...]:
    """Substitution rates per profile, highest first.

    ``paper``: the authors' ten, ``(1 − p)/p ∈ logspace(−3, 6, 10)``.  ``quick``: eight rates
    with ``(1 − p)/p`` from 10 to 10⁶, denser (half decades) where the S1 curve turns (10 to
    10³).  ``smoke``: three.
    """
    del data  # the grids do not depend on the data
    if profile == "paper":
        rates = substitution_grid()
    elif profile == "quick":
        rates = rates_for_x(10.0 ** np.array([1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0]))
    elif profile == "smoke":
        rates = rates_for_x([10.0, 300.0, 1e5])
    else:
        msg = f"profile must be 'smoke', 'quick' or 'paper', got {profile!r}"
        raise ValueError(msg)
    return tuple(float(r) for r in rates)


def month_table(data: SequenceData, signal: str) -> pd.DataFrame:
    """Sequences per collection month (months since 2020-01), split by ``signal`` when it is
    not the month itself."""
    if signal == "month":
        return data.obs["month"].value_counts().sort_index().to_frame("sequences")
    return pd.crosstab(data.obs["month"], data.obs[signal])


def eval_subset(data: SequenceData, profile: str) -> np.ndarray:
    """Indices of the sequences the probe sees: the 25 % test split at ``paper`` (as the
    authors); every sequence at ``quick``/``smoke``, where the test split (86 sequences) is
    too small for the probe (the model never sees the label, but it was trained on 75 % of
    these sequences without it)."""
    if profile == "paper":
        return np.flatnonzero(data.obs["split"].to_numpy() == "test")
    return np.arange(len(data))


def run(
    data: SequenceData,
    *,
    profile: str = "quick",
    models=None,
    rates=None,
    seeds=(0,),
    out: str | Path | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sweep substitution rate × model × seed; one tidy row per job.

    Returns the results (``modality, task, dataset, model, signal, size, level, x, seed, mi``
    and the bookkeeping columns) and the training histories (``model, level, seed, step,
    train_loss, val_loss, seconds``).  With ``out``, both are written there (``results.csv``,
    ``histories.csv``) and finished rows are skipped on a rerun.
    """
    from ..models import make_model
    from ..probe import latent_mi

    models = tuple(models or MODELS[profile])
    rates = tuple(rates if rates is not None else levels(data, profile))
    signal = SIGNAL[profile]
    key = ["model", "level", "seed"]
    table = ResultsTable(Path(out) / "results.csv", key=key) if out is not None else None
    rows, hist = [], []
    versions = package_versions()
    train_idx = np.flatnonzero(data.obs["split"].to_numpy() == "train")
    test_idx = np.flatnonzero(data.obs["split"].to_numpy() == "test")
    eval_idx = eval_subset(data, profile)
    target = data.obs[signal].to_numpy()[eval_idx]
    for seed in seeds:
        for rate in rates:
            level = float(f"{rate:.12g}")  # a key that survives the CSV round trip
            todo = [m for m in models
                    if table is None or not table.done({"model": m, "level": level, "seed": seed})]
            if not todo:
                continue
            noisy, x = corrupt(data, rate, seed=1_000_003 * seed + 11)
            for name in todo:
                model = make_model(name, profile=profile, seed=seed)
                t0 = time.perf_counter()
                model.fit(noisy[train_idx], val=noisy[test_idx], progress=progress)
                t1 = time.perf_counter()
                Z = model.embed(noisy[eval_idx])
                t2 = time.perf_counter()
                mi = latent_mi(Z, target, seed=seed)
                t3 = time.perf_counter()
                row = {
                    "modality": "sequence", "task": f"spike_{signal}",
                    "dataset": data.uns.get("dataset", ""), "model": name, "signal": signal,
                    "size": len(train_idx), "level": level, "x": x, "seed": seed, "mi": mi,
                    "profile": profile, "n_train": len(train_idx), "n_eval": len(eval_idx),
                    "fit_seconds": round(t1 - t0, 3), "embed_seconds": round(t2 - t1, 3),
                    "probe_seconds": round(t3 - t2, 3), "versions": versions,
                    "n_parameters": model.n_parameters,
                }
                rows.append(row)
                if table is not None:
                    table.append(row)
                h = pd.DataFrame(model.history_).assign(model=name, level=level, seed=seed)
                hist.append(h)
    results = table.frame if table is not None else pd.DataFrame(rows)
    histories = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame()
    if out is not None:
        path = Path(out) / "histories.csv"
        if path.exists() and len(histories):
            old = pd.read_csv(path)
            histories = pd.concat([old, histories], ignore_index=True).drop_duplicates(
                ["model", "level", "seed", "step"], keep="last")
        elif path.exists():
            histories = pd.read_csv(path)
        if len(histories):
            write_csv_atomic(histories, path)
    return results, histories


def fit(results: pd.DataFrame, *, by="model") -> pd.DataFrame:
    """Noise-law fit of MI against ``x = (1 − p)/p``, one per model (``laws.fit_table``)."""
    return laws.fit_table(results, by, law="noise", x="x", y="mi")


def stability(fits: pd.DataFrame, *, rate: float = 1e-3, fraction: float = 0.9,
              by: str = "model") -> pd.DataFrame:
    """What a fitted curve says about the paper's "stable to about 1 substitution in 1,000".

    Columns: ``u_bar``, ``i_max``, ``r_squared``; ``mi_at_rate`` and ``fraction_at_rate``
    (the fitted MI at substitution rate ``rate`` and its share of ``I_max``); ``rate_at_fraction``
    (the substitution rate at which the fit falls to ``fraction`` of ``I_max``: larger means
    more robust).

    Examples
    --------
    >>> x = np.geomspace(1e-2, 1e6, 12)
    >>> fits = fit(pd.DataFrame({"model": "m", "x": x, "mi": laws.noise_law(x, 30, 3)}))
    >>> row = stability(fits).iloc[0]
    >>> round(row["u_bar"]), round(float(row["fraction_at_rate"]), 3)
    (30, 0.993)
    """
    rows = []
    x_rate = substitution_x(rate)
    for _, f in fits.iterrows():
        ok = bool(f.get("success", False)) and np.isfinite(f.get("u_bar", np.nan))
        u, i = (float(f["u_bar"]), float(f["i_max"])) if ok else (np.nan, np.nan)
        mi = float(laws.noise_law(x_rate, u, i)) if ok else np.nan
        x90 = float(laws.umi90(u, i, fraction=fraction)) if ok else np.nan
        rows.append({
            by: f[by], "u_bar": u, "i_max": i, "r_squared": f.get("r_squared", np.nan),
            "mi_at_rate": mi, "fraction_at_rate": mi / i if ok and i > 0 else np.nan,
            "rate_at_fraction": float(rates_for_x(x90)) if ok else np.nan,
        })
    return pd.DataFrame(rows)
