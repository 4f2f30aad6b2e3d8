"""Ground truth beyond the Gaussian (helpers.groundtruth.beyond) and the probe's critic path."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from helpers import groundtruth as gt
from helpers import probe
from helpers.probe import critic

LOG2 = np.log(2.0)


def tolerance(truth: float) -> float:
    return max(0.1, 0.1 * truth)


# ----------------------------------------------------------------------------- the truths


@pytest.mark.parametrize(("dim", "df", "pairs"), [(1, 1, 0), (3, 2, 0), (2, 3, 2), (5, 5, 1)])
def test_student_t_mi_matches_monte_carlo_over_exact_densities(dim, df, pairs):
    """The closed form against E[log p(x, y) − log p(x) − log p(y)] with scipy's t density."""
    x, y, mi = gt.student_t(200_000, dim_x=dim, dim_y=dim, df=df, n_pairs=pairs, rho=0.8,
                            seed=3)
    cov = np.eye(2 * dim)
    for i in range(pairs):
        cov[i, dim + i] = cov[dim + i, i] = 0.8
    joint = stats.multivariate_t(np.zeros(2 * dim), cov, df=df)
    mx = stats.multivariate_t(np.zeros(dim), cov[:dim, :dim], df=df)
    my = stats.multivariate_t(np.zeros(dim), cov[dim:, dim:], df=df)
    pmi = (joint.logpdf(np.hstack([x, y])) - mx.logpdf(x) - my.logpdf(y)) / LOG2
    se = pmi.std() / np.sqrt(pmi.size)
    assert mi == pytest.approx(pmi.mean(), abs=4 * se + 1e-3)
    assert mi > gt.gaussian_mi(cov, dim)  # the shared scale adds information


def test_student_t_mi_tends_to_the_gaussian_and_rejects_bad_df():
    cov = np.eye(4)
    cov[0, 2] = cov[2, 0] = 0.6
    assert gt.student_t_mi(cov, 2, 1e8) == pytest.approx(gt.gaussian_mi(cov, 2), abs=1e-6)
    with pytest.raises(ValueError, match="df"):
        gt.student_t_mi(cov, 2, 0)


def test_additive_uniform_mi_matches_numerical_entropy():
    for eps in (0.1, 0.3, 0.5, 0.75, 2.0):
        w = 2 * eps

        def density(t, w=w):  # X ~ U(0, 1) plus U(−w/2, w/2): a trapezoid
            return np.clip(np.minimum(t + w / 2, 1.0) - np.maximum(t - w / 2, 0.0), 0, None) / w

        h_y = integrate.quad(lambda t: -density(t) * np.log(density(t)) if density(t) > 0
                             else 0.0, -eps, 1 + eps, points=[eps, 1 - eps, -eps + 1],
                             limit=200)[0]
        assert gt.additive_uniform_mi(eps) == pytest.approx((h_y - np.log(w)) / LOG2,
                                                             abs=1e-6)


def test_x_mixture_mi_matches_two_dimensional_quadrature():
    rho = 0.9
    cov = [np.array([[1, s * rho], [s * rho, 1]]) for s in (1, -1)]

    def pmi_density(y, x):
        p = 0.5 * sum(stats.multivariate_normal([0, 0], c).pdf([x, y]) for c in cov)
        q = stats.norm.pdf(x) * stats.norm.pdf(y)
        return p * np.log(p / q) if p > 0 else 0.0

    exact = integrate.dblquad(pmi_density, -8, 8, -8, 8, epsabs=1e-7)[0] / LOG2
    _, _, mi, se = gt.x_mixture(10, dim=1, rho=rho, n_mc=200_000, seed=1)
    assert mi == pytest.approx(exact, abs=max(4 * se, 2e-3))
    assert se < 0.005


def test_spiral_keeps_the_radius_and_is_undone_by_the_opposite_turn():
    x = np.random.default_rng(0).standard_normal((500, 5))
    s = gt.spiral(x, speed=2.0)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), np.linalg.norm(x, axis=1))
    np.testing.assert_allclose(gt.spiral(s, speed=-2.0), x, atol=1e-12)
    assert not np.allclose(s, x)
    with pytest.raises(ValueError, match="d >= 2"):
        gt.spiral(x[:, :1])


def test_warps_are_strictly_monotone_and_checked():
    t = np.linspace(-5, 5, 101)
    for kind in ("asinh", "half_cube", "normal_cdf"):
        assert np.all(np.diff(gt.warp(t, kind)) > 0)
    with pytest.raises(ValueError, match="warp kind"):
        gt.warp(t, "cube")


def test_the_grid_covers_the_families_dimensions_and_range():
    grid = gt.cases()
    families = {c.family for c in grid}
    assert {"student", "student-asinh", "half_cube", "normal_cdf", "spiral", "mixture",
            "additive", "sparse"} <= families
    assert max(c.dim_x for c in grid) == 50 and min(c.dim_x for c in grid) == 1
    assert max(c.mi for c in grid) > 4 and min(c.mi for c in grid) < 0.3
    assert len({c.name for c in grid}) == len(grid)
    x, y = grid[0].make(100, seed=1)
    assert x.shape == (100, grid[0].dim_x) and y.shape == (100, grid[0].dim_y)


# ----------------------------------------------------------------------------- the probe


@pytest.mark.parametrize("name", ["student-3x3-df2", "asinh-student-2x2-df1",
                                  "student-10x10-df5", "x-mixture-1x1-0.9"])
def test_information_in_a_shared_scale_or_a_mixture_is_read(name):
    """Uncorrelated X and Y whose dependence the canonical pairs cannot see (before the
    critic: 0.12, 0.41, 0.00 and 0.56 bits of 0.42, 0.62, 0.47 and 0.59)."""
    case = next(c for c in gt.cases() if c.name == name)
    x, y = case.make(5000, seed=0)
    res = probe.estimate_mi(x, y, seed=0, y_kind="continuous")
    assert abs(res.mi - case.mi) <= tolerance(case.mi), (res.mi, case.mi)
    assert res.params["critic_z"] > critic.SCALE_Z
    assert set(res.params["latent_paths"]) & set(critic.CRITIC_PATHS)
    assert 0 < res.se < 0.05


def test_gaussian_inputs_do_not_train_a_critic_and_read_as_before():
    x, y, truth = gt.gaussian_lowrank(3000, dim_x=40, dim_y=8, mi_bits=1.0, rank=2, seed=0)
    auto = probe.estimate_mi(x, y, seed=0)
    off = probe.estimate_mi(x, y, seed=0, critic=False)
    assert auto.params["critic_z"] < critic.SCALE_Z
    assert auto.mi == off.mi  # bit for bit: nothing else changed
    assert not set(auto.params["latent_paths"]) & set(critic.CRITIC_PATHS)


def test_a_forced_critic_reads_nothing_on_independent_heavy_tails():
    rng = np.random.default_rng(5)
    x, y = rng.standard_t(2, size=(3000, 4)), rng.standard_t(2, size=(3000, 4))
    res = probe.estimate_mi(x, y, seed=0, critic=True)
    assert abs(res.mi) < 0.03


def test_critic_option_is_checked():
    x, y, _ = gt.sparse_gaussian(300, dim_x=3, dim_y=3)
    with pytest.raises(ValueError, match="critic must be"):
        probe.estimate_mi(x, y, critic="yes")


def test_gaussianise_is_monotone_and_nce_of_a_perfect_critic_is_log_k():
    ref = np.random.default_rng(0).standard_t(1, size=(1000, 2))
    g = critic.gaussianise(ref, ref)
    for j in range(2):
        assert np.all(np.diff(g[np.argsort(ref[:, j]), j]) > 0)
    assert abs(g.mean()) < 0.01 and g.std() == pytest.approx(1.0, abs=0.02)
    k = 64
    assert critic.nce_pmi(np.eye(k) * 1e4).mean() == pytest.approx(np.log2(k))
