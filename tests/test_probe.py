"""Accuracy, determinism and input checks of helpers.probe against analytic ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import groundtruth as gt
from helpers import probe

# ----------------------------------------------------------------------------- KSG


def test_ksg_bivariate_gaussian():
    rng = np.random.default_rng(0)
    for rho in (0.5, 0.95):
        x = rng.standard_normal((4000, 1))
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((4000, 1))
        est = probe.ksg_mi(x, y, k=3).mean()
        assert est == pytest.approx(-0.5 * np.log2(1 - rho**2), abs=0.05)


def test_ksg_independent_is_near_zero():
    rng = np.random.default_rng(1)
    est = probe.ksg_mi(rng.standard_normal((3000, 2)), rng.standard_normal((3000, 2))).mean()
    assert abs(est) < 0.03


def test_ksg_discrete_labels_separated_is_entropy():
    rng = np.random.default_rng(2)
    c = rng.integers(0, 4, 3000)
    x = (10.0 * c)[:, None] + rng.standard_normal((3000, 1))
    est = probe.ksg_mi(x, c, discrete_y=True).mean()
    p = np.bincount(c) / c.size
    assert est == pytest.approx(-(p * np.log2(p)).sum(), abs=0.03)


def test_copula_mi_is_exact_for_a_gaussian_pair_whatever_the_marginals():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(20000)
    y = 0.6 * x + 0.8 * rng.standard_normal(20000)
    truth = -0.5 * np.log2(1 - 0.36)
    est = probe.copula_mi(x, y)
    assert est.shape == (20000,)
    assert est.mean() == pytest.approx(truth, abs=0.02)  # 3 sd of the sampling error
    # ranks only: monotone maps of either variable change nothing
    assert probe.copula_mi(np.exp(x), y**3).mean() == pytest.approx(est.mean(), abs=1e-6)
    # the mean of the pointwise values is the Gaussian MI of the normal scores' correlation
    rho = np.corrcoef(x, y)[0, 1]
    assert est.mean() == pytest.approx(-0.5 * np.log2(1 - rho**2), abs=0.002)


def test_copula_mi_is_a_lower_bound_and_near_zero_on_independent_data():
    rng = np.random.default_rng(3)
    # X ~ U(0, 1), Y = X + U(0, a): I = a/2 - ln a nats exactly (a trapezoid minus a box)
    a = 0.5
    x = rng.random(20000)
    y = x + a * rng.random(20000)
    truth = (a / 2 - np.log(a)) / np.log(2)  # 1.36 bits
    gauss = probe.copula_mi(x, y).mean()
    assert gauss < truth - 0.05  # the copula reads less than the truth ...
    assert probe.ksg_mi(x[:, None], y[:, None]).mean() == pytest.approx(truth, abs=0.06)
    # ... and a symmetric, non-monotone dependence not at all, as a correlation cannot see it
    assert probe.copula_mi(x - 0.5, (x - 0.5) ** 2).mean() < 0.01
    null = [probe.copula_mi(rng.standard_normal(1250), rng.standard_normal(1250)).mean()
            for _ in range(40)]
    assert 0 <= np.mean(null) < 0.002  # negative correlations read 0, so a slight + bias


def test_copula_mi_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        probe.copula_mi(np.arange(5.0), np.arange(4.0))


def test_ksg_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        probe.ksg_mi(np.zeros((5, 1)), np.zeros((5, 1)), k=5)


# ----------------------------------------------------------------------------- latent MI


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mi", "dim_x", "dim_y"),
    [(0.5, 50, 1), (2.0, 50, 5), (2.0, 200, 20), (0.25, 1000, 50), (4.0, 1000, 5)],
)
def test_latent_mi_gaussian_accuracy(mi, dim_x, dim_y):
    # the tolerance: 0.15 bit or 10 %; (0.25, 1000, 50) is the weak-signal corner
    # that read 0.05-0.09 before wide X was projected onto 128 principal components
    x, y, truth = gt.gaussian_lowrank(5000, dim_x=dim_x, dim_y=dim_y, mi_bits=mi, seed=4)
    est = probe.latent_mi(x, y, seed=0)
    assert est == pytest.approx(truth, abs=max(0.15, 0.1 * truth))


@pytest.mark.slow
def test_latent_mi_labels():
    x, labels, truth = gt.labelled_mixture(4000, dim_x=40, n_classes=5, separation=12.0, seed=1)
    res = probe.estimate_mi(x, labels, seed=0)
    assert res.y_kind == "categorical"
    assert truth == pytest.approx(np.log2(5), abs=1e-6)
    assert res.mi == pytest.approx(truth, abs=0.15)
    # partially overlapping classes
    x, labels, truth = gt.labelled_mixture(4000, dim_x=40, n_classes=3, mi_bits=0.8, seed=2)
    assert probe.latent_mi(x, labels, seed=0) == pytest.approx(truth, abs=0.15)


@pytest.mark.slow
def test_independent_data_gives_near_zero():
    rng = np.random.default_rng(3)
    est = probe.latent_mi(rng.standard_normal((3000, 30)), rng.standard_normal((3000, 4)), seed=0)
    assert abs(est) < 0.1


def test_determinism_and_global_rng_untouched():
    x, y, _ = gt.gaussian_lowrank(1500, dim_x=20, dim_y=3, mi_bits=1.0, seed=7)
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 (the legacy global state must stay untouched)
    state_t, state_np = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    a = probe.estimate_mi(x, y, seed=5, max_epochs=15)
    assert torch.equal(torch.get_rng_state(), state_t)
    np.testing.assert_array_equal(np.random.get_state()[1], state_np)  # noqa: NPY002
    b = probe.estimate_mi(x, y, seed=5, max_epochs=15)
    assert abs(a.mi - b.mi) < 1e-6
    np.testing.assert_allclose(a.pmi, b.pmi, atol=1e-6)
    np.testing.assert_array_equal(a.eval_idx, b.eval_idx)
    c = probe.estimate_mi(x, y, seed=6, max_epochs=15)
    assert not np.array_equal(a.eval_idx, c.eval_idx)


def test_fixed_eval_idx_and_result_fields():
    x, y, _ = gt.gaussian_lowrank(1200, dim_x=15, dim_y=1, mi_bits=1.0, seed=8)
    train, test = probe.make_split(1200, eval_frac=0.25, seed=3)
    t2, e2 = probe.make_split(1200, eval_frac=0.25, seed=3)
    np.testing.assert_array_equal(test, e2)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == 1200
    res = probe.estimate_mi(x, y, eval_idx=test, seed=0, max_epochs=10)
    np.testing.assert_array_equal(res.eval_idx, test)
    assert np.intersect1d(res.train_idx, test).size == 0
    assert np.intersect1d(res.val_idx, test).size == 0
    assert res.pmi.shape == (test.size,) and res.n_eval == test.size
    assert res.mi == pytest.approx(res.pmi.mean())
    assert res.latent_x.shape == (1200, 8)
    assert res.y_kind == "continuous" and res.latent_y is None  # scalar y is its own latent
    assert len(res.history["val_loss"]) == len(res.history["train_loss"]) >= 1
    assert res.history["val_loss"][res.best_epoch] == min(res.history["val_loss"])
    mask = np.zeros(1200, bool)
    mask[test] = True
    res_mask = probe.estimate_mi(x, y, eval_idx=mask, seed=0, max_epochs=10)
    assert res_mask.mi == pytest.approx(res.mi, abs=1e-9)


def test_best_weights_are_restored():
    # after training, the model's eval-mode validation loss is the recorded minimum (the best
    # epoch's weights were copied and restored, not a reference to the live weights)
    rng = np.random.default_rng(0)
    xt = torch.from_numpy(rng.standard_normal((300, 20)).astype(np.float32))
    yt = xt[:, :3] + 0.5 * torch.from_numpy(rng.standard_normal((300, 3)).astype(np.float32))
    xv, yv = xt[:60], yt[:60]
    torch.manual_seed(0)
    model = probe.networks.build(torch, 20, 3, 4, None, 32, "continuous", 0, dropout=0.5)
    hist, best = probe.networks.train(
        torch, model, xt[60:], yt[60:], xv, yv, lr=3e-2, batch_size=32, max_epochs=60,
        patience=4, alpha=1.0, lam=1.0, weight_decay=0.0,
        gen=torch.Generator().manual_seed(0), progress=False,
    )
    assert best < len(hist["val_loss"]) - 1  # it stopped after a worse epoch
    with torch.no_grad():
        val = model.loss(xv, yv, 1.0, 1.0).item()
    assert val == pytest.approx(min(hist["val_loss"]), rel=1e-6)
    assert val < hist["val_loss"][-1]


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    return rng.standard_normal((300, 5)), rng.standard_normal((300, 2))


def test_bad_inputs_raise(xy):
    x, y = xy
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        probe.latent_mi(bad, y)
    bad = y.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        probe.latent_mi(x, bad)
    with pytest.raises(ValueError, match="different numbers of samples"):
        probe.latent_mi(x, y[:-1])
    with pytest.raises(ValueError, match="at least"):
        probe.latent_mi(x[:60], y[:60])
    with pytest.raises(ValueError, match="constant"):
        probe.latent_mi(x, np.ones(300))
    with pytest.raises(ValueError, match="single class"):
        probe.latent_mi(x, np.array(["a"] * 300))
    with pytest.raises(ValueError, match="constant"):
        probe.latent_mi(np.ones((300, 4)), y)
    with pytest.raises(ValueError, match="missing labels"):
        probe.latent_mi(x, np.array(["a", None] * 150, dtype=object))
    with pytest.raises(ValueError, match="overlap"):
        probe.latent_mi(x, y, eval_idx=np.arange(100), train_idx=np.arange(50, 300))
    with pytest.raises(ValueError, match="outside"):
        probe.latent_mi(x, y, eval_idx=np.arange(250, 350))
    with pytest.raises(ValueError, match="y_kind"):
        probe.latent_mi(x, y, y_kind="ordinal")
    with pytest.raises(ValueError, match="numeric"):
        probe.latent_mi(np.array([["a"]] * 300), y)
    with pytest.raises(ValueError, match="eval_frac"):
        probe.make_split(10, eval_frac=1.0)


def test_label_kinds_are_detected(xy):
    x, _ = xy
    assert probe.estimator.prepare_y(np.array(["a", "b"] * 150), "auto")[0] == "categorical"
    assert probe.estimator.prepare_y(np.arange(300) % 3, "auto")[0] == "categorical"
    assert probe.estimator.prepare_y(np.array([True, False] * 150), "auto")[0] == "categorical"
    assert probe.estimator.prepare_y(np.linspace(0, 1, 300), "auto")[0] == "continuous"
    assert probe.estimator.prepare_y(np.arange(300) % 3, "continuous")[0] == "continuous"


def test_select_all_uses_every_latent_coordinate_legacy():
    # the reference behaviour (KSG on all 8 + 8 latents) is available and reads lower than the
    # canonical-pair selection on a high-MI case with one informative pair
    x, y, truth = gt.gaussian_lowrank(2000, dim_x=30, dim_y=12, mi_bits=2.0, rank=1, seed=1)
    sel = probe.estimate_mi(x, y, seed=0, max_epochs=30, select="max")
    every = probe.estimate_mi(x, y, seed=0, max_epochs=30, select="all")
    assert every.n_pairs == 8 and every.embedding_x.shape == (every.n_eval, 8)
    assert sel.n_pairs < 8
    assert every.mi < sel.mi - 0.3
    assert sel.mi == pytest.approx(truth, abs=0.3)


# ----------------------------------------------------------------------------- spread and null


@pytest.mark.slow
def test_information_spread_over_four_pairs_is_summed():
    # rank-4 shared latent at 2 bits: KSG on the 4 leading pairs jointly read ~20 % low (its
    # bias grows with the dimension); the default sums KSG over the canonical pairs
    x, y, truth = gt.gaussian_lowrank(4000, dim_x=40, dim_y=12, mi_bits=2.0, rank=4, seed=3)
    res = probe.estimate_mi(x, y, seed=0)
    assert res.params["select"] == "sum" and res.n_pairs >= 4
    assert res.mi == pytest.approx(truth, abs=0.2)
    assert res.mi == pytest.approx(res.pmi.mean())
    joint = probe.ksg_mi(res.embedding_x[:, :4], res.embedding_y[:, :4]).mean()
    assert joint < truth - 0.25  # what the joint KSG (the old maximum rule's m = 4) reads


@pytest.mark.slow
def test_information_spread_thinly_over_eight_directions_is_found():
    # rank 8 at 1 bit (each shared direction ~0.12 bit) in dim X 100 / dim Y 50: the networks
    # alone find 0.68 bit at N = 5,000; the linear (ridge-canonical) path keeps it
    x, y, truth = gt.gaussian_lowrank(5000, dim_x=100, dim_y=50, mi_bits=1.0, rank=8, seed=0)
    res = probe.estimate_mi(x, y, seed=0)
    assert "linear" in res.params["latent_paths"]
    assert res.mi == pytest.approx(truth, abs=0.15)
    networks_only = probe.estimate_mi(x, y, seed=0, linear=False)
    assert networks_only.params["latent_paths"] == ["network", "network"]
    assert networks_only.mi < truth - 0.2


@pytest.mark.slow
def test_a_quarter_bit_spread_over_eight_directions_is_found():
    # 0.25 bit over 8 shared directions (~0.03 bit each): KSG on such weak pairs scatters
    # 5-6 times as much as the copula and reads a little low, and directions learned from half
    # of the samples keep little of it; the cross-fitted linear path and the Gaussian-copula
    # reading of its pairs find it
    x, y, truth = gt.gaussian_lowrank(5000, dim_x=100, dim_y=20, mi_bits=0.25, rank=8, seed=0)
    res = probe.estimate_mi(x, y, seed=0)
    assert res.params["latent_paths"] == ["linear", "linear"]
    assert res.mi == pytest.approx(truth, abs=0.15)
    assert res.mi > 0.15
    pairs = res.embedding_x.shape[1]
    ksg_sum = sum(probe.ksg_mi(res.embedding_x[:, [i]], res.embedding_y[:, [i]]).mean()
                  for i in range(pairs))
    assert ksg_sum < res.mi - 0.05  # what 1-D KSG on the same pairs reads


@pytest.mark.slow
def test_clustered_signal_is_not_counted_twice():
    # 4 clusters seen by x (30-d) and y (12-d): I(x; y) <= H(cluster) = 2 bits, but the
    # cluster shows in 3 canonical pairs at once (1.4 + 1.3 + 0.8 bits apart); dependent
    # pairs are grouped and estimated jointly instead of added
    rng = np.random.default_rng(0)
    n, k = 3000, 4
    c = rng.integers(0, k, n)
    mx, my = rng.standard_normal((k, 30)), rng.standard_normal((k, 12))
    mx *= 6 / np.linalg.norm(mx, axis=1, keepdims=True)
    my *= 6 / np.linalg.norm(my, axis=1, keepdims=True)
    x, y = mx[c] + rng.standard_normal((n, 30)), my[c] + rng.standard_normal((n, 12))
    res = probe.estimate_mi(x, y, seed=0)
    groups = res.params["pair_groups"]
    assert any(len(g) >= 2 for g in groups)
    kept = [i for g in groups for i in g]
    assert res.mi_by_pairs[kept].sum() > 2.5  # what adding the pairs would read
    assert 1.6 < res.mi < 2.1


@pytest.mark.slow
def test_independent_data_reads_zero_on_average():
    # the held-out choice of pairs leaves no upward bias (the old maximum over leading pairs
    # read +0.025 to +0.05 bit on 16 vs 16 independent dimensions)
    vals = []
    for seed in range(3):
        rng = np.random.default_rng([seed, 99])
        x, y = rng.standard_normal((2000, 16)), rng.standard_normal((2000, 16))
        vals.append(probe.latent_mi(x, y, seed=seed, max_epochs=40))
    assert abs(np.mean(vals)) < 0.02
    assert max(abs(v) for v in vals) < 0.05


# ----------------------------------------------------------------------------- pandas inputs


def test_pandas_y_is_aligned_by_index_or_refused():
    pd = pytest.importorskip("pandas")
    x, y, _ = gt.gaussian_lowrank(400, dim_x=6, dim_y=2, mi_bits=1.0, seed=0)
    labels = [f"cell{i}" for i in range(400)]
    perm = np.random.default_rng(0).permutation(400)
    x_df = pd.DataFrame(x, index=labels)
    y_df = pd.DataFrame(y, index=labels).iloc[perm]  # same cells, another order
    ref = probe.latent_mi(x, y, seed=0, max_epochs=3)
    assert probe.latent_mi(x_df, y_df, seed=0, max_epochs=3) == ref
    y_before = y_df.copy()
    with pytest.raises(ValueError, match="not 0 … n−1"):
        probe.latent_mi(x, y_df, seed=0, max_epochs=3)  # never matched by position
    pd.testing.assert_frame_equal(y_df, y_before)  # the caller's y is untouched
    other = pd.DataFrame(y, index=[f"other{i}" for i in range(400)])
    with pytest.raises(ValueError, match="different index labels"):
        probe.latent_mi(x_df, other, seed=0, max_epochs=3)
    # a default RangeIndex is positional, and a Series works like a column
    assert probe.latent_mi(x, pd.DataFrame(y), seed=0, max_epochs=3) == ref
    s = pd.Series(y[:, 0], index=labels).iloc[perm]
    assert probe.latent_mi(x_df, s, seed=0, max_epochs=3) == probe.latent_mi(
        x, y[:, 0], seed=0, max_epochs=3)


def test_wide_x_projection_uses_the_gram_matrix():
    # more columns than fitting samples: the principal scores come from the n × n Gram matrix
    # and equal the d × d covariance route up to the sign of each axis
    rng = np.random.default_rng(0)
    a = rng.standard_normal((120, 900)) @ np.diag(np.linspace(3, 0.1, 900))
    ref = np.arange(80)
    got = probe.linear.pca_project(a, ref, 20)
    c = a[ref] - a[ref].mean(axis=0)
    w, v = np.linalg.eigh(c.T @ c)
    want = (a - a[ref].mean(axis=0)) @ v[:, np.argsort(w)[::-1][:20]]
    np.testing.assert_allclose(np.abs(got), np.abs(want), atol=1e-8)


# ----------------------------------------------------------------------------- method="paper"


def test_paper_method_architecture_and_outputs():
    # latentmi 0.1.3's AECross for x_dim 50, y_dim 3, 8 latents: hidden 1024/512/256
    def mlp(sizes):
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    model = probe.paper.build_paper(torch, 50, 3, 8)
    n_params = sum(p.numel() for p in model.parameters())
    expected = sum(mlp(s) for s in (
        [50, 1024, 512, 256, 8], [3, 1024, 512, 256, 8],  # encoders
        [8, 256, 512, 1024, 50], [8, 256, 512, 1024, 3],  # decoders
        [8, 256, 512, 1024, 50], [8, 256, 512, 1024, 3],  # cross decoders
    ))
    assert n_params == expected
    assert probe.paper.paper_hidden(5000) == 4096 and probe.paper.paper_hidden(2048) == 1024
    z = probe.paper.paper_standardise(np.c_[np.ones(5), [0.0, 0, 0, 0, 1e6]])
    assert np.all(z[:, 0] == 0) and z.max() <= 10  # constant -> 0, clipped (latentmi)

    x, labels, _ = gt.labelled_mixture(600, dim_x=20, n_classes=3, separation=6.0, seed=0)
    res = probe.estimate_mi(x, labels, seed=1, method="paper", max_epochs=4)
    res2 = probe.estimate_mi(x, labels, seed=1, method="paper", max_epochs=4)
    assert res.mi == res2.mi and np.isfinite(res.mi)
    assert res.latent_x.shape == (600, 8) and res.latent_y.shape == (600, 8)  # y one-hot, encoded
    assert res.embedding_x.shape == (300, 8) and res.n_pairs == 8
    assert res.params["method"] == "paper" and res.params["lr"] == 1e-4
    # validation = the evaluation half, as latentmi; the weights at the last epoch are used
    np.testing.assert_array_equal(res.val_idx, res.eval_idx)
    assert len(res.history["val_loss"]) == 4
    with pytest.raises(ValueError, match="method"):
        probe.estimate_mi(x, labels, method="latentmi")


def test_a_negative_seed_is_refused_clearly():
    x = np.random.default_rng(0).normal(size=(200, 3))
    with pytest.raises(ValueError, match="non-negative integer"):
        probe.latent_mi(x, x[:, 0], seed=-1)


def test_rare_classes_do_not_stop_the_label_estimate():
    # a labelled sample whose evaluation part holds a class of 2 and a class of 1 (the smallest
    # day of a small time course, say): estimated on the others, close to the estimate without them
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    x = rng.normal(size=(1000, 1)) + 2.0 * labels[:, None]
    common = probe.ksg_mi(x, labels, discrete_y=True).mean()
    xr = np.vstack([x, [[5.0], [5.2], [9.0]]])
    rare = np.concatenate([labels, [2, 2, 3]])
    with_rare = probe.ksg_mi(xr, rare, discrete_y=True)
    assert np.isfinite(with_rare).all() and len(with_rare) == 1003
    assert abs(with_rare.mean() - common) < 0.05
    with pytest.raises(ValueError, match="single sample"):
        probe.ksg_mi(x[:10], np.arange(10), discrete_y=True)
