"""helpers.experiment: the sweep grid, the law fits of a results table and its summary."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

from helpers import experiment, laws


def law_rows(u_bar=120.0, i_max=2.5, *, sizes=(100, 300, 1000), n_sat=250.0, s=0.8):
    """A results table whose noise curve follows Eq. 1 exactly and whose full-depth points
    follow the cell-number law."""
    umis = np.geomspace(10, 2000, 6)
    quality = umis / umis[-1]
    largest = sizes[-1]
    rows = [
        {"size": largest, "quality": q, "umis_per_cell": u,
         "mi_value": laws.noise_law(u, u_bar, i_max)}
        for q, u in zip(quality, umis, strict=True)
    ]
    full = laws.noise_law(umis[-1], u_bar, i_max)
    for n in sizes[:-1]:
        scale = laws.cell_law(n, n_sat, s, full) / laws.cell_law(largest, n_sat, s, full)
        rows.append(
            {"size": n, "quality": 1.0, "umis_per_cell": umis[-1], "mi_value": full * scale}
        )
    frame = pd.DataFrame(rows)
    return frame.assign(
        dataset="toy", signal="sig", algorithm="PCA", seed=0, fit_seconds=2.0, probe_seconds=1.0
    )


def test_fit_sweep_recovers_the_noise_law():
    results = law_rows(u_bar=120.0, i_max=2.5)
    noise_fits, cell_fits = experiment.fit_sweep(results)
    assert len(noise_fits) == 1  # the cell-number sizes (one quality each) are not noise curves
    fit = noise_fits.iloc[0]
    assert fit["size"] == 1000 and fit["n_points"] == 6
    assert fit["u_bar"] == pytest.approx(120.0, rel=1e-4)
    assert fit["i_max"] == pytest.approx(2.5, rel=1e-4)
    assert fit["r_squared"] > 0.9999 and bool(fit["constrained"])
    assert len(cell_fits) == 1 and int(cell_fits.iloc[0]["n_points"]) == 3


def test_fit_sweep_needs_the_published_columns():
    with pytest.raises(ValueError, match="published column"):
        experiment.fit_sweep(law_rows().drop(columns="umis_per_cell"))


def test_summarise_counts_noise_curves_only():
    rising = law_rows()
    falling = law_rows().assign(algorithm="SCVI")
    curve = falling["size"] == 1000
    falling.loc[curve, "mi_value"] = falling.loc[curve, "mi_value"].to_numpy()[::-1]
    baseline = law_rows().assign(algorithm="RandomProjection")  # not a learned model
    results = pd.concat([rising, falling, baseline], ignore_index=True)
    noise_fits, _ = experiment.fit_sweep(results)
    summary = experiment.summarise(results, noise_fits)
    # two learned noise curves (PCA rises, SCVI falls); the one-point cell-number sizes and
    # the random projection do not count
    assert summary["falls_with_depth"] == 0.5
    assert summary["n_rows"] == len(results) and summary["n_noise_curves"] == 3
    assert summary["fit_minutes"] == pytest.approx(len(results) * 2.0 / 60)
    assert summary["probe_minutes"] == pytest.approx(len(results) / 60)


def test_design_follows_the_profile():
    import anndata as ad
    from scipy import sparse

    rng = np.random.default_rng(0)
    adata = ad.AnnData(sparse.csr_matrix(rng.poisson(2.0, (1000, 200)).astype(np.float32)))
    mean_umis = float(adata.X.sum(axis=1).mean())
    grid = experiment.design(adata, profile="quick")
    assert grid.n_eval == 350 and grid.noise_sizes == (650,)
    assert grid.fractions[0] == 1.0 and len(grid.fractions) == 6
    assert grid.fractions[-1] * mean_umis == pytest.approx(10.0, rel=1e-6)
    assert np.allclose(np.diff(np.log(grid.fractions)), np.log(grid.fractions[1]))
    assert grid.cell_sizes[0] == 100 and grid.cell_sizes[-1] == 650 and len(grid.cell_sizes) == 4
    assert len(grid.points()) == 6 + 3  # full quality at the largest size is counted once
    with pytest.raises(ValueError, match="Unknown profile"):
        experiment.design(adata, profile="fast")


def test_docstring_examples_run():
    result = doctest.testmod(experiment, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
