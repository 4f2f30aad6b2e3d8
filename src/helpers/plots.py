"""The book's palette and figure helpers (matplotlib/seaborn), shared by every chapter."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from . import laws

__all__ = [
    "MODEL_COLORS",
    "MODEL_ORDER",
    "TASK_COLORS",
    "TASK_MARKERS",
    "TASK_ORDER",
    "annotate_cell_fit",
    "annotate_noise_fit",
    "draw_method_schematic",
    "plot_cell_collapse",
    "plot_cell_curves",
    "plot_cell_fit",
    "plot_noise_collapse",
    "plot_noise_curves",
    "plot_noise_fit",
    "plot_parameter_bars",
    "plot_substitutions",
    "add_rate_axis",
    "plot_task_against_published",
    "save_figure",
    "set_style",
]

#: Representation models in the order the book shows them, and their colors.
MODEL_ORDER = ["RandomProjection", "PCA", "SCVI", "Geneformer"]
MODEL_COLORS = {
    "RandomProjection": "#40ada6",
    "PCA": "#3c4ebf",
    "SCVI": "#e3a600",
    "Geneformer": "#d6543a",
    "MobileNetV3": "#1D4289",
    "MobileNetV2": "#EB7F54",
    "ESM2-8M": "#1D457F",
    "ESM2-35M": "#EB7F54",
    "ESM2-150M": "#F2AF4A",
}
#: Auxiliary tasks, their colors (also used for modalities in the universal collapse).
TASK_ORDER = ["Protein MI", "Clonal MI", "Temporal MI", "Spatial MI"]
TASK_COLORS = {
    "Protein MI": "#C8102E",
    "Clonal MI": "#FF6720",
    "Temporal MI": "#FFC72C",
    "Spatial MI": "#009739",
    "Cell type MI": "#7f7f7f",
    "Image": "#1D4289",
    "Sequence": "#702F8A",
}
TASK_MARKERS = {"Protein MI": "o", "Clonal MI": "s", "Temporal MI": "^", "Spatial MI": "D"}


def set_style() -> None:
    """Apply the book's style: figures (white grid, dashed light grid, compact legends) and
    tables (floats shown to four significant digits, e.g. ``0.0631`` not ``0.063096``; the
    values themselves and the CSVs written are untouched)."""
    sns.set_theme(style="whitegrid", context="notebook")
    pd.set_option("display.float_format", "{:,.4g}".format)
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "grid.linewidth": 0.5,
            "grid.linestyle": "--",
            "legend.frameon": False,
            "axes.titleweight": "bold",
            "axes.titlesize": 11,
            "mathtext.fontset": "stix",
        }
    )


def _curve_grid(fit, n=200):
    lo, hi = fit.x[fit.x > 0].min(), fit.x.max()
    return np.geomspace(lo / 1.5, hi * 1.5, n)


def plot_noise_fit(ax, fit: laws.NoiseLawFit, *, color, label=None, band=True, points=True):
    """Points of a noise curve, its fitted law (dashed) and the 2σ band, on a log x-axis.

    A fit the data do not constrain (``fit.ok`` false: flat, unsaturated, …) is drawn as its
    points only: its line would claim a law the data do not show.
    """
    if points:
        ax.plot(fit.x, fit.mi, "o", color=color, ms=3, alpha=0.6, label=label, lw=0)
    ax.set_xscale("log")
    if not (getattr(fit, "ok", True) and np.isfinite(fit.u_bar)):
        return ax
    grid = _curve_grid(fit)
    ax.plot(grid, fit.predict(grid), "--", color=color, lw=1.3, label=None if points else label)
    if band and fit.constrained:
        lo, hi = fit.band(grid, sigma=2)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    return ax


def plot_cell_fit(ax, fit: laws.CellLawFit, *, color, label=None, band=True):
    """Points of a cell-number curve with the fitted law and its 2σ band (points only for a
    fit that is not ``ok``)."""
    ax.plot(fit.x, fit.mi, "o", color=color, ms=3, alpha=0.6, label=label, lw=0)
    ax.set_xscale("log")
    if not getattr(fit, "ok", True):
        return ax
    grid = np.geomspace(fit.x.min() / 1.5, fit.x.max() * 1.5, 200)
    ax.plot(grid, fit.predict(grid), "--", color=color, lw=1.3)
    if band and fit.constrained:
        lo, hi = fit.band(grid, sigma=2)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    return ax


def annotate_noise_fit(ax, fit: laws.NoiseLawFit, *, color="0.2", units="UMIs per cell"):
    """Mark I_max (horizontal line) and ū (the half-bit point) on a fitted noise curve."""
    ax.axhline(fit.i_max, color=color, lw=0.8, ls=":")
    ax.text(
        fit.x.min(), fit.i_max, rf"$I_{{\max}} = {fit.i_max:.2f}$ bits", va="bottom", fontsize=9
    )
    y = fit.predict(fit.u_bar)
    ax.plot([fit.u_bar], [y], "o", mfc="white", mec=color, ms=7, zorder=5)
    ax.annotate(
        rf"$\bar u = {fit.u_bar:,.0f}$ {units}" if fit.u_bar >= 100 else rf"$\bar u = {fit.u_bar:.3g}$ {units}",
        xy=(fit.u_bar, y),
        xytext=(fit.u_bar * 4, y - 0.25 * fit.i_max),
        arrowprops=dict(arrowstyle="->", color=color),
        fontsize=9,
    )
    return ax


def annotate_cell_fit(ax, fit: laws.CellLawFit, *, color="0.2"):
    """Mark I∞, N_sat (one bit below I∞) and the exponent s on a fitted cell-number curve."""
    ax.axhline(fit.i_inf, color=color, lw=0.8, ls=":")
    ax.text(fit.x.min(), fit.i_inf, rf"$I_\infty = {fit.i_inf:.2f}$ bits", va="bottom", fontsize=9)
    y = fit.predict(fit.n_sat)
    ax.plot([fit.n_sat], [y], "o", mfc="white", mec=color, ms=7, zorder=5)
    ax.annotate(
        rf"$N_{{sat}} = {fit.n_sat:,.0f}$ cells" + "\n" + rf"$s = {fit.s:.2f}$",
        xy=(fit.n_sat, y),
        xytext=(fit.n_sat * 6, y - 0.6),
        arrowprops=dict(arrowstyle="->", color=color),
        fontsize=9,
    )
    return ax


def plot_noise_collapse(ax, fits, *, color_of, label_of=None, s=6, alpha=0.5):
    """Collapse noise curves onto the universal law.

    Parameters
    ----------
    ax
        Axes to draw on.
    fits
        Iterable of (key, :class:`~helpers.laws.NoiseLawFit`).
    color_of, label_of
        Functions of the key giving each curve's color and legend label (one legend entry
        per distinct label).
    """
    seen = set()
    z_all = []
    for key, fit in fits:
        z, y = fit.collapse()
        label = label_of(key) if label_of else None
        ax.scatter(
            z, y, s=s, color=color_of(key), alpha=alpha, lw=0,
            label=label if label not in seen else None, rasterized=True,
        )
        seen.add(label)
        z_all.append(z)
    z_all = np.concatenate(z_all)
    grid = np.geomspace(max(z_all.min(), 1e-6), z_all.max(), 300)
    ax.plot(grid, laws.universal_noise_curve(grid), color="k", lw=1.5, label="Eq. 1 (universal)")
    ax.set_xscale("log")
    ax.set_xlabel(r"$z = (x/\bar u + 2^{-2I_{\max}})\,/\,(1 - 2^{-2I_{\max}})$")
    ax.set_ylabel(r"$I - I_{\max}$ (bits)")
    return ax


def plot_cell_collapse(ax, fits, *, color_of, label_of=None, s=10, alpha=0.6):
    """Collapse cell-number curves onto the identity line (log–log), one point per size.

    Seeds are averaged at each training size before rescaling, as in the paper's Fig. 2b.
    """
    seen = set()
    for key, fit in fits:
        sizes = np.unique(fit.x)
        means = np.array([fit.mi[fit.x == n].mean() for n in sizes])
        x, y = laws.cell_collapse(sizes, means, fit.n_sat, fit.s, fit.i_inf)
        label = label_of(key) if label_of else None
        ax.scatter(
            x, y, s=s, color=color_of(key), alpha=alpha, lw=0,
            label=label if label not in seen else None,
        )
        seen.add(label)
    lims = np.array([ax.get_xlim(), ax.get_ylim()])
    lo, hi = max(lims.min(), 1e-3), lims.max()
    ax.plot([lo, hi], [lo, hi], color="k", lw=1.2, label="identity (law)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$N / N_{sat}$")
    ax.set_ylabel(r"$(I_\infty - I)^{-1/s}$")
    return ax


def draw_method_schematic(ax=None):
    """Fig. 1: measurement noise → representation model → auxiliary mutual information.

    Drawn with matplotlib primitives: a clean profile is corrupted at decreasing quality
    (binomial thinning of counts, pixelation, substitutions), a representation model is trained
    on each noisy copy, and the information its embedding carries about a held-out auxiliary
    signal is measured by latent MI and fitted with Eq. 1.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 3.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 3.6)
    ax.axis("off")
    rng = np.random.default_rng(0)
    boxes = [
        (0.2, "Measurement", "cells × genes counts\nimages · sequences", "#f2f2f2"),
        (2.45, "Noise", "downsample UMIs\npixelate · add noise\nsubstitute residues", "#fde0dd"),
        (4.7, "Representation", "RP · PCA · scVI\nGeneformer · MobileNet\nESM2", "#e0ecf4"),
        (6.95, "Auxiliary MI",
         "latent MI with a signal\nthe model never saw\n(protein, clone, time…)", "#e5f5e0"),
    ]
    for x0, title, body, face in boxes:
        ax.add_patch(
            FancyBboxPatch((x0, 0.9), 1.9, 2.2, boxstyle="round,pad=0.05", fc=face, ec="0.3")
        )
        ax.text(x0 + 0.95, 2.85, title, ha="center", va="center", weight="bold", fontsize=10)
        ax.text(x0 + 0.95, 1.3, body, ha="center", va="center", fontsize=8)
    # a count matrix thinned at three depths
    for i, keep in enumerate([1.0, 0.4, 0.1]):
        counts = rng.poisson(3 * keep, size=(5, 6))
        ax.imshow(
            counts, extent=(2.55 + 0.6 * i, 3.05 + 0.6 * i, 2.05, 2.6), cmap="Reds",
            vmin=0, vmax=6, aspect="auto", zorder=3,
        )
    ax.scatter(rng.normal(5.65, 0.25, 60), rng.normal(2.3, 0.15, 60), s=4, c="#3c4ebf")
    for x0 in (2.12, 4.37, 6.62):
        ax.add_patch(
            FancyArrowPatch((x0, 2.0), (x0 + 0.31, 2.0), arrowstyle="-|>", mutation_scale=18,
                            lw=1.5, color="0.25", zorder=4)
        )
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 3.6)
    # the resulting law
    inset = ax.inset_axes([9.45 / 11, 0.27, 1.45 / 11, 0.6])
    x = np.geomspace(1, 1e5, 100)
    inset.plot(x, laws.noise_law(x, 300, 2.5), color="k")
    inset.axhline(2.5, ls=":", color="0.5", lw=0.8)
    inset.set_xscale("log")
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_xlabel("UMIs per cell", fontsize=8)
    inset.set_ylabel("MI (bits)", fontsize=8)
    inset.set_title("Eq. 1 fit", fontsize=9)
    ax.text(5.5, 0.35, "train on each noise level → probe a fixed held-out set → fit "
            r"$I(x) = I_{\max} - \frac{1}{2}\log_2\frac{x/\bar u + 1}{x/\bar u + 2^{-2I_{\max}}}$",
            ha="center", fontsize=9)
    return ax


def _plot_fits_by_model(ax, fits, plot_fit, by, **legend):
    """Draw every successful fit of a ``fit_table`` with ``plot_fit``, one color per model.

    ``by`` names the model column; ``None`` takes ``model`` (the sweeps' tables) or
    ``algorithm`` (the released single-cell table's name for it).
    """
    if by is None:
        by = "model" if "model" in fits.columns else "algorithm"
    if fits.empty or by not in fits.columns:
        return
    present = set(fits[by])
    order = [m for m in MODEL_ORDER if m in present]  # the cell models, then the others
    order += [m for m in MODEL_COLORS if m in present and m not in order]
    for model in order:
        for fit in fits.loc[fits[by] == model, "fit"]:
            if fit is not None:
                plot_fit(ax, fit, color=MODEL_COLORS[model], label=model)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, **legend)


def plot_noise_curves(ax, fits, *, by=None, title=None, xlabel="UMIs per cell"):
    """Noise curves of one task, one color per model, from a ``fit_table`` of noise fits."""
    _plot_fits_by_model(ax, fits, plot_noise_fit, by, loc="upper left")
    ax.set(xlabel=xlabel, ylabel="auxiliary MI (bits)", title=title)
    return ax


def plot_task_against_published(
    ours, published, *, task, size_published, size_ours=None, xlabel="UMIs per cell"
):
    """This book's noise curves of a task beside the paper's released ones.

    ``ours`` is a ``fit_table`` of noise fits with a ``size`` column; the curves at
    ``size_ours`` (default the largest size) are drawn, one panel per ``estimator`` where the
    table has that column (:func:`helpers.probe.estimator_probe`), the published curves last.
    """
    size_ours = int(ours["size"].max()) if size_ours is None else int(size_ours)
    ours = ours[ours["size"] == size_ours]
    panels = (list(ours.groupby("estimator", sort=False)) if "estimator" in ours
              else [("", ours)])
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5 * (len(panels) + 1), 3.8))
    for ax in axes[1:-1]:
        ax.sharey(axes[0])  # this book's estimators on one scale
    for ax, (estimator, fits) in zip(axes, panels, strict=False):
        by = f" · {estimator} estimator" if estimator else ""
        plot_noise_curves(ax, fits, title=f"this book{by} · {size_ours:,} training samples",
                          xlabel=xlabel)
    right = axes[-1]
    if published is not None and len(published):
        plot_noise_curves(right, published, title=f"paper · {size_published:,} training samples",
                          xlabel=xlabel)
    else:
        right.set_axis_off()
    fig.suptitle(task, weight="bold")
    fig.tight_layout()
    return fig


def plot_cell_curves(ax, fits, *, by=None, ylabel="auxiliary MI (bits)"):
    """Cell-number curves of one task, one color per model, from a ``fit_table``."""
    _plot_fits_by_model(ax, fits, plot_cell_fit, by)
    ax.set(xlabel="training cells", ylabel=ylabel)
    return ax


def plot_substitutions(ax, reference: str, noisy, labels, *, start: int = 1, width: int = 60):
    """A stretch of a sequence at several substitution rates, one row each, letters written and
    every substituted position (letter differing from ``reference``) shaded.

    Parameters
    ----------
    reference
        The clean sequence (the first row).
    noisy
        Substituted copies of ``reference``.
    labels
        Row labels for the noisy copies (e.g. the rates).
    start, width
        The 1-based first residue and the number of residues shown.
    """
    rows = [reference] + [str(s) for s in noisy]
    names = ["clean", *labels]
    lo, hi = start - 1, start - 1 + width
    grid = np.array([[c != r for c, r in zip(s[lo:hi], reference[lo:hi], strict=True)]
                     for s in rows], dtype=float)
    ax.imshow(grid, cmap=mpl.colors.ListedColormap(["white", TASK_COLORS["Sequence"]]),
              vmin=0, vmax=1, aspect="auto", alpha=0.45, interpolation="nearest")
    for i, s in enumerate(rows):
        for j, c in enumerate(s[lo:hi]):
            ax.text(j, i, c, ha="center", va="center", fontsize=7, family="monospace",
                    weight="bold" if grid[i, j] else "normal")
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ticks = np.arange(0, width, 10)
    ax.set_xticks(ticks, [str(start + t) for t in ticks], fontsize=8)
    ax.set_xlabel("residue")
    ax.grid(False)
    return ax


def add_rate_axis(ax, *, label="substitution rate p"):
    """A top axis giving the substitution rate ``p`` of a ``(1 − p)/p`` x-axis."""

    def to_rate(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 / (1.0 + np.asarray(x, dtype=float))

    def to_x(p):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.asarray(p, dtype=float)
            return (1.0 - p) / p

    top = ax.secondary_xaxis("top", functions=(to_rate, to_x))
    top.set_xlabel(label)
    return top


# --------------------------------------------------------------------------------------------
# Experimental design: joint surfaces and allocation curves
# --------------------------------------------------------------------------------------------
__all__ += ["plot_allocation", "plot_joint_surface"]


def plot_joint_surface(ax, fit, *, costs=None, budgets=(), n_lim=None, x_lim=None,
                       levels=8, optimum_budgets=None, within=None, cmap="viridis",
                       points=True):
    """Iso-information contours of a joint law over (cells, UMIs per cell), log–log.

    Parameters
    ----------
    ax
        Axes to draw on.
    fit
        A :class:`~helpers.laws.JointLawFit`.
    costs, budgets
        Iso-cost lines (dashed grey) of :class:`~helpers.plan.Costs` at each budget.
    n_lim, x_lim
        Axis ranges (default: the fit's domain, widened tenfold each way).
    levels
        Contour levels (a number or the levels in bits).
    optimum_budgets
        Budgets whose optimal designs are drawn as the allocation path (white line).
    within
        Passed to :func:`helpers.plan.allocation_curve`: search within this factor of the grid.
    points
        Mark the grid the law was fitted on.
    """
    from . import plan

    dom = fit.domain or {"n": (1e2, 1e5), "x": (10.0, 1e4)}
    n_lim = n_lim or (dom["n"][0] / 10, dom["n"][1] * 10)
    x_lim = x_lim or (dom["x"][0] / 10, dom["x"][1] * 10)
    nn, xx = np.meshgrid(np.geomspace(*n_lim, 160), np.geomspace(*x_lim, 160))
    zz = fit.predict(nn, xx)
    cs = ax.contourf(nn, xx, zz, levels=levels, cmap=cmap, alpha=0.85)
    ax.contour(nn, xx, zz, levels=cs.levels, colors="k", linewidths=0.4, alpha=0.5)
    if points and fit.n.size:
        ax.plot(fit.n, fit.x, ".", color="w", ms=2, alpha=0.7)
    if costs is not None:
        grid_n = np.geomspace(*n_lim, 200)
        for b in budgets:
            x = costs.depth_on_budget(grid_n, b)
            ax.plot(grid_n, x, "--", color="0.85", lw=1)
    if optimum_budgets is not None and costs is not None:
        try:
            plan.check_fit(fit)
        except ValueError:  # no design stands on a failed fit: say so instead of a path
            ax.text(0.5, 0.08, "fit did not converge:\nno optimal path", color="w",
                    ha="center", va="bottom", fontsize=8, transform=ax.transAxes)
        else:
            curve = plan.allocation_curve(fit, optimum_budgets, costs=costs, n_range=n_lim,
                                          within=within)
            ax.plot(curve["cells"], curve["umis_per_cell"], "-", color="w", lw=2)
            ax.plot(curve["cells"], curve["umis_per_cell"], "o", color="#d6543a", ms=3)
    ax.set(xscale="log", yscale="log", xlim=n_lim, ylim=x_lim)
    return cs


def plot_allocation(ax, curve, *, color, label=None, y="umis_per_cell", band=True):
    """Optimal depth (or cells) against budget from :func:`helpers.plan.allocation_curve`."""
    ax.plot(curve["budget"], curve[y], "-", color=color, label=label)
    lo, hi = {"umis_per_cell": ("umis_lo", "umis_hi"), "cells": ("cells_lo", "cells_hi"),
              "mi": ("mi_lo", "mi_hi")}[y]
    if band and lo in curve and np.isfinite(curve[lo]).any():
        ax.fill_between(curve["budget"], curve[lo], curve[hi], color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    if y != "mi":
        ax.set_yscale("log")
    return ax


# ----------------------------------------------------------------------------- images


def _show(ax, img):
    """One C x H x W image (grey or RGB, any range) on an axis, no ticks."""
    img = np.asarray(img, dtype=float)
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        lo, hi = np.percentile(img, [1, 99])
        ax.imshow(np.clip((img.transpose(1, 2, 0) - lo) / max(hi - lo, 1e-9), 0, 1),
                  interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_image_grid(data, noises, *, n_examples: int = 2, seed: int = 0, label_fmt=None):
    """Example images, clean and at every noise level of every corruption.

    Parameters
    ----------
    data
        :class:`~helpers.datasets.images.ImageData` with ``obs["label"]``.
    noises
        ``{title: (corruption, levels)}``; one block of rows per corruption, one column per
        level.  A corruption is called as ``corruption(data, level, seed=seed)``.
    n_examples
        Images per corruption (from different classes).
    label_fmt
        ``{title: format}`` for the column titles, e.g. ``"σ = {:.2g}"``.
    """
    rng = np.random.default_rng(seed)
    codes = data.label_codes
    classes = rng.permutation(np.unique(codes))[:n_examples]
    picks = np.array([rng.choice(np.flatnonzero(codes == k)) for k in classes])
    subset = data[picks]
    n_cols = max(len(levels) for _, levels in noises.values())
    n_rows = n_examples * len(noises)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.35 * n_cols, 1.45 * n_rows),
                             squeeze=False)
    for b, (title, (corruption, levels)) in enumerate(noises.items()):
        fmt = (label_fmt or {}).get(title, "{:g}")
        for j, level in enumerate(levels):
            noisy, _ = corruption(subset, level, seed=seed)
            for i in range(n_examples):
                ax = axes[b * n_examples + i, j]
                _show(ax, noisy.images[i])
                if i == 0:
                    ax.set_title(fmt.format(level), fontsize=8)
                if j == 0:
                    ax.set_ylabel(f"{title}\n{subset.obs['label'].iloc[i]}", fontsize=8)
        for j in range(len(levels), n_cols):
            for i in range(n_examples):
                axes[b * n_examples + i, j].set_axis_off()
    fig.tight_layout(pad=0.3)
    return fig


def plot_training_curves(curves, *, level_name="level", title=None):
    """Training loss and validation accuracy per epoch, one line per noise level (the
    ``epoch, train_loss, val_accuracy, level`` columns of
    :func:`helpers.sweep.histories`)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    levels = sorted(curves["level"].unique())
    cmap = mpl.colormaps["viridis"]
    for i, level in enumerate(levels):
        sub = curves[curves["level"] == level].sort_values("epoch")
        color = cmap(i / max(len(levels) - 1, 1))
        left.plot(sub["epoch"], sub["train_loss"], "o-", color=color, ms=3,
                  label=f"{level_name} = {level:.3g}")
        right.plot(sub["epoch"], sub["val_accuracy"], "o-", color=color, ms=3)
    left.set(xlabel="epoch", ylabel="training loss (cross-entropy)")
    right.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1))
    left.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title, weight="bold")
    fig.tight_layout()
    return fig


def plot_signal_curves(ax, fits, *, signals=None, colors=None, xlabel="x", title=None,
                       ylabel="MI with the label (bits)"):
    """Noise curves of several signals of one task (a ``fit_table`` by signal), with fits
    and 2σ bands, one color per signal."""
    signals = list(fits["signal"]) if signals is None else list(signals)
    palette = sns.color_palette("husl", max(len(signals), 1))
    for i, signal in enumerate(signals):
        row = fits[fits["signal"] == signal]
        if row.empty or row["fit"].iloc[0] is None:
            continue
        color = (colors or {}).get(signal, palette[i])
        plot_noise_fit(ax, row["fit"].iloc[0], color=color, label=signal)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", ncol=1)
    return ax


def plot_class_parameters(fits, *, by="signal", title=None):
    """Fitted ū and I_max (±2 SE) per class, two panels (ū on a log axis)."""
    df = fits[fits["fit"].notna()].copy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 0.32 * max(len(df), 4) + 1.2),
                                      sharey=True)
    y = np.arange(len(df))
    colors = df.get("color", pd.Series(["#1D4289"] * len(df), index=df.index))
    for ax, col, err, label in ((left, "u_bar", "u_bar_err", r"noise scale $\bar u$"),
                                (right, "i_max", "i_max_err", r"capacity $I_{\max}$ (bits)")):
        vals, errs = df[col].to_numpy(float), 2 * df[err].to_numpy(float)
        ok = np.isfinite(errs) & (errs < np.abs(vals))
        ax.errorbar(vals[ok], y[ok], xerr=errs[ok], fmt="o", color="0.2", ms=4, capsize=2)
        ax.plot(vals[~ok], y[~ok], "o", mfc="white", mec="0.4", ms=4)
        ax.set_xlabel(label)
        for yi, c in zip(y, colors, strict=True):
            ax.axhspan(yi - 0.4, yi + 0.4, color=c, alpha=0.06, lw=0)
    left.set_xscale("log")
    left.set_yticks(y, df[by])
    if title:
        fig.suptitle(title, weight="bold")
    fig.tight_layout()
    return fig


__all__ += ["plot_class_parameters", "plot_image_grid", "plot_signal_curves",
            "plot_training_curves"]


def plot_parameter_bars(fits, axes=None, *, title=None):
    """Fig. 2f in the paper's form: bars of ū (left, log scale) and I_max (right) per task and model.

    ``fits`` has one noise-law fit per ``task`` (the names of :data:`TASK_ORDER`) and
    ``model``, with ``u_bar``, ``i_max``, their ``*_err`` and ``ok``.  Error bars are 1σ; a
    fit the data do not constrain is drawn hatched and without error bar, as an extrapolation.

    Examples
    --------
    >>> import pandas as pd
    >>> fits = pd.DataFrame({"task": ["Protein MI"] * 2, "model": ["PCA", "SCVI"],
    ...                      "u_bar": [900.0, 300.0], "i_max": [2.0, 3.0], "u_bar_err": [50.0, 20.0],
    ...                      "i_max_err": [0.1, 0.1], "ok": [True, False]})
    >>> axes = plot_parameter_bars(fits)
    >>> [len(ax.patches) for ax in axes]
    [2, 2]
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    tasks = [t for t in TASK_ORDER if t in set(fits["task"])]
    models = [m for m in MODEL_ORDER if m in set(fits["model"])]
    width = 0.8 / max(len(models), 1)
    for ax, (col, label, log) in zip(axes, [("u_bar", r"$\bar u$ (UMIs per cell)", True),
                                            ("i_max", r"$I_{\max}$ (bits)", False)]):
        for j, model in enumerate(models):
            sub = fits[fits["model"] == model].set_index("task").reindex(tasks)
            pos = np.arange(len(tasks)) + (j - (len(models) - 1) / 2) * width
            ok = sub["ok"].fillna(False).astype(bool).to_numpy()
            err = sub.get(f"{col}_err", pd.Series(np.nan, index=sub.index)).to_numpy(dtype=float)
            err = np.where(ok & np.isfinite(err), err, 0.0)
            bars = ax.bar(pos, sub[col], width, yerr=err, color=MODEL_COLORS[model], label=model,
                          capsize=2, edgecolor="k", linewidth=0.3)
            for k in np.flatnonzero(~ok):
                bars[k].set_hatch("///")
                bars[k].set_alpha(0.5)
        ax.set_xticks(np.arange(len(tasks)), [t.replace(" MI", "") for t in tasks])
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
    axes[0].legend(fontsize=8, ncol=2)
    if title:
        axes[0].figure.suptitle(title, fontsize=10)
    return axes


def save_figure(fig, path, **kwargs):
    """Save a matplotlib figure atomically (a full disk or a kill leaves no truncated file);
    the format follows the suffix, ``bbox_inches="tight"`` unless given.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> fig, ax = plt.subplots()
    >>> path = save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "f.png")
    >>> path.read_bytes()[:4]
    b'\x89PNG'
    >>> plt.close(fig)
    """
    from pathlib import Path

    from .sweep.store import write_atomic

    path = Path(path)
    options = {"bbox_inches": "tight", "format": path.suffix.lstrip(".") or "png", **kwargs}
    return write_atomic(path, lambda fh: fig.savefig(fh, **options), mode="wb")
