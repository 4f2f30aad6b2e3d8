"""Analytic checks of helpers.groundtruth."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import groundtruth as gt


def test_gaussian_mi_matches_bivariate_closed_form():
    for rho in (0.0, 0.3, 0.9, 0.999):
        cov = np.array([[2.0, rho * np.sqrt(2 * 3)], [rho * np.sqrt(2 * 3), 3.0]])
        assert gt.gaussian_mi(cov, 1) == pytest.approx(-0.5 * np.log2(1 - rho**2), abs=1e-12)


def test_gaussian_mi_independent_blocks_add():
    # two independent correlated pairs: MI adds
    r1, r2 = 0.5, 0.8
    cov = np.eye(4)
    cov[0, 2] = cov[2, 0] = r1
    cov[1, 3] = cov[3, 1] = r2
    expected = -0.5 * np.log2(1 - r1**2) - 0.5 * np.log2(1 - r2**2)
    assert gt.gaussian_mi(cov, 2) == pytest.approx(expected, abs=1e-12)


def test_gaussian_mi_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        gt.gaussian_mi(np.ones((2, 3)), 1)
    with pytest.raises(ValueError, match="positive definite"):
        gt.gaussian_mi(np.ones((2, 2)), 1)
    with pytest.raises(ValueError, match="dim_x"):
        gt.gaussian_mi(np.eye(3), 3)


@pytest.mark.parametrize(
    ("dim_x", "dim_y", "mi", "rank"),
    [(10, 1, 0.25, None), (200, 50, 4.0, None), (30, 5, 2.0, 3), (1000, 10, 1.0, 2)],
)
def test_lowrank_hits_target_and_agrees_with_full_logdet(dim_x, dim_y, mi, rank):
    x, y, truth = gt.gaussian_lowrank(5, dim_x=dim_x, dim_y=dim_y, mi_bits=mi, rank=rank, seed=3)
    assert x.shape == (5, dim_x) and y.shape == (5, dim_y)
    assert truth == pytest.approx(mi, abs=1e-9)
    # recover the scale from the low-rank form and check against the dense log-det formula
    from scipy import optimize

    r = min(dim_y, 2) if rank is None else rank
    log_s = optimize.brentq(
        lambda ls: gt.gaussian.lowrank_mi(dim_x, dim_y, np.exp(ls), r, 1.0, 1.0, 3) - mi, -10, 10,
        xtol=1e-14,
    )
    cov = gt.gaussian_lowrank_cov(dim_x, dim_y, scale=np.exp(log_s), rank=rank, seed=3)
    assert gt.gaussian_mi(cov, dim_x) == pytest.approx(mi, abs=1e-8)


def test_lowrank_sample_covariance_matches_model():
    n, dim_x, dim_y = 200_000, 6, 3
    x, y, truth = gt.gaussian_lowrank(n, dim_x=dim_x, dim_y=dim_y, mi_bits=1.5, seed=5)
    from scipy import optimize

    log_s = optimize.brentq(
        lambda ls: gt.gaussian.lowrank_mi(dim_x, dim_y, np.exp(ls), 2, 1.0, 1.0, 5) - 1.5, -10, 10,
        xtol=1e-14,
    )
    cov = gt.gaussian_lowrank_cov(dim_x, dim_y, scale=np.exp(log_s), seed=5)
    sample = np.cov(np.hstack([x, y]), rowvar=False)
    assert np.abs(sample - cov).max() < 0.03 * np.abs(cov).max()
    assert gt.gaussian_mi(sample, dim_x) == pytest.approx(truth, abs=0.02)


def test_lowrank_is_reproducible_and_validates():
    a = gt.gaussian_lowrank(50, dim_x=10, dim_y=2, mi_bits=1.0, seed=9)
    b = gt.gaussian_lowrank(50, dim_x=10, dim_y=2, mi_bits=1.0, seed=9)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="mi_bits"):
        gt.gaussian_lowrank(50, dim_x=10, dim_y=2, mi_bits=0.0)
    with pytest.raises(ValueError, match="rank"):
        gt.gaussian_lowrank(50, dim_x=10, dim_y=2, mi_bits=1.0, rank=3)
    with pytest.raises(ValueError, match="dim_y"):
        gt.gaussian_lowrank(50, dim_x=10, dim_y=0, mi_bits=1.0)


def test_mixture_mi_limits_and_monte_carlo():
    assert gt.mixture_mi([0.0, 50.0, 100.0]) == pytest.approx(np.log2(3), abs=1e-9)
    assert gt.mixture_mi([1.0, 1.0]) == pytest.approx(0.0, abs=1e-9)
    probs = np.array([0.2, 0.8])
    h = -(probs * np.log2(probs)).sum()
    assert gt.mixture_mi([0.0, 100.0], probs) == pytest.approx(h, abs=1e-9)
    # Monte Carlo: I = E[log2 p(c|t) - log2 p(c)]
    means = np.array([0.0, 1.0, 3.0])
    rng = np.random.default_rng(0)
    c = rng.integers(0, 3, 400_000)
    t = means[c] + rng.standard_normal(c.size)
    logj = -0.5 * (t[:, None] - means) ** 2
    post = logj[np.arange(c.size), c] - np.logaddexp.reduce(logj, axis=1)
    mc = np.mean(post + np.log(3)) / np.log(2)
    assert gt.mixture_mi(means) == pytest.approx(mc, abs=0.005)


def test_labelled_mixture_target_and_structure():
    x, labels, mi = gt.labelled_mixture(3000, dim_x=20, n_classes=4, mi_bits=1.2, seed=1)
    assert mi == pytest.approx(1.2, abs=1e-9)
    assert x.shape == (3000, 20) and labels.shape == (3000,)
    assert set(labels) == {"c0", "c1", "c2", "c3"}
    # class means lie on a line: the centred class means have rank 1
    means = np.array([x[labels == f"c{i}"].mean(axis=0) for i in range(4)])
    sv = np.linalg.svd(means - means.mean(axis=0), compute_uv=False)
    assert sv[1] < 0.15 * sv[0]
    with pytest.raises(ValueError, match="exactly one"):
        gt.labelled_mixture(10, dim_x=5, n_classes=3)
    with pytest.raises(ValueError, match="mi_bits"):
        gt.labelled_mixture(10, dim_x=5, n_classes=2, mi_bits=1.5)


def test_box1_gaussian_formula():
    # eta -> infinity: I(Y; X); eta = 0: nothing
    assert gt.box1_gaussian_mi(0.0) == pytest.approx(0.0)
    big = gt.box1_gaussian_mi(1e8, sigma_y=2.0, sigma_u=0.5, dim=3)
    assert big == pytest.approx(3 * 0.5 * np.log2(1 + 4.0 / 0.25), rel=1e-9)
    # direct Gaussian computation of I(Y; Z) for Z = eta X + N(0, 1)
    sy, su, eta = 1.3, 0.7, 2.0
    var_z = eta**2 * (sy**2 + su**2) + 1
    cov = np.array([[sy**2, eta * sy**2], [eta * sy**2, var_z]])
    assert gt.box1_gaussian_mi(eta, sigma_y=sy, sigma_u=su) == pytest.approx(
        gt.gaussian_mi(cov, 1), abs=1e-12
    )


def test_box1_channel_counts():
    s = gt.box1_channel(2000, dim=2, n_genes=30, depths=(5, 5000), sigma_u=0.5, seed=0)
    assert s.y.shape == (2000, 2) and s.x.shape == (2000, 2)
    assert np.allclose(s.rates.sum(axis=1), 1.0)
    assert s.mi_yx == pytest.approx(2 * 0.5 * np.log2(1 + 1 / 0.25))
    for depth, counts in s.counts.items():
        assert counts.dtype.kind == "i" and counts.shape == (2000, 30)
        assert counts.sum(axis=1).mean() == pytest.approx(depth, rel=0.05)
    # X - Y is the channel noise U
    assert np.std(s.x - s.y) == pytest.approx(0.5, rel=0.05)
    assert s.gaussian_mi(1e8) == pytest.approx(s.mi_yx, rel=1e-6)
