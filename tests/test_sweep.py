"""helpers.sweep: the grid and jobs of a task, running them (serial and Dask), the law fits."""

from __future__ import annotations

import dataclasses
import doctest
import importlib

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from helpers import data as hdata
from helpers import laws, probe, profiles, sweep, tasks

# the modules (the package exports functions of the same names: sweep.jobs(), sweep.run())
jobs_module = importlib.import_module("helpers.sweep.jobs")
run_module = importlib.import_module("helpers.sweep.run")


# --------------------------------------------------------------------------------------------
# A synthetic count task (registered for the module, removed afterwards)
# --------------------------------------------------------------------------------------------
def _toy_counts(n_obs=1000, n_vars=200):
    rng = np.random.default_rng(0)
    day = rng.integers(0, 4, n_obs).astype(float)
    responsive = rng.random(n_vars) < 0.2
    rate = np.exp(rng.normal(0, 1, n_vars))[None, :] * (1 + 0.5 * day[:, None] * responsive)
    x = sparse.csr_matrix(rng.poisson(rate).astype(np.float32))
    a = ad.AnnData(x, obs=pd.DataFrame({"day": day}, index=[f"c{i}" for i in range(n_obs)]))
    a.var_names = [f"g{j}" for j in range(n_vars)]
    return a


def load_toy():
    return _toy_counts()


@pytest.fixture(scope="module")
def toy_task():
    base = tasks.get("sc_temporal")
    spec = tasks.TaskSpec(**{
        **base.__dict__, "name": "toy_counts", "paper": None,
        "sources": {p: tasks.Source(load_toy, "day") for p in ("quick", "paper")},
    })
    tasks.register(spec)
    yield spec
    tasks.unregister("toy_counts")


def test_quick_grid_follows_the_profile(toy_task):
    adata = toy_task.load("quick")
    grid = sweep.grid(toy_task, profile="quick")
    mean_umis = float(adata.X.sum(axis=1).mean())
    assert grid.n_eval == 350 and grid.sizes[-1] == 650 and len(grid.sizes) == 4
    assert grid.levels[0] == 1.0 and len(grid.levels) == 6
    assert grid.levels[-1] * mean_umis == pytest.approx(10.0, rel=1e-6)
    assert np.allclose(np.diff(np.log(grid.levels)), np.log(grid.levels[1]))
    assert len(grid.points()) == 6 + 3  # full quality at the largest size is counted once
    todo = sweep.jobs(toy_task, profile="quick", models=["PCA"])
    assert len(todo) == 9 and len({j.id for j in todo}) == 9
    noise_curve = sweep.jobs(toy_task, profile="quick", models=["PCA"], sizes=grid.sizes[-1:])
    assert [j.level for j in noise_curve] == list(grid.levels)
    with pytest.raises(ValueError, match="not in the grid"):
        sweep.jobs(toy_task, profile="quick", sizes=[123])
    assert todo[0].level == 1.0 and all(j.profile == "quick" for j in todo)
    with pytest.raises(ValueError, match="no model"):
        sweep.grid(toy_task, profile="quick", models=["ResNet"])
    with pytest.raises(ValueError, match="Unknown profile"):
        sweep.grid(toy_task, profile="fast")


def test_paper_grid_is_the_released_factorial_grid(toy_task):
    grid = sweep.grid(toy_task, profile="paper")
    assert grid.factorial and len(grid.levels) == 10 and grid.seeds == (0, 1, 2)
    # the released sizes run log-spaced from 100 up to the pool rounded to one digit
    assert grid.sizes[0] == 100 and len(grid.points()) == len(grid.levels) * len(grid.sizes)
    todo = sweep.jobs(toy_task, profile="paper")
    assert len(todo) == 10 * len(grid.sizes) * 3 * len(toy_task.models)


def test_factorial_variant_has_its_own_name_and_job_ids(toy_task):
    plain, variant = profiles.get("quick"), profiles.factorial("quick")
    assert (variant.name, variant.base, variant.factorial) == ("quick-factorial", "quick", True)
    assert profiles.factorial("paper") is profiles.get("paper")
    assert profiles.factorial(variant) is variant
    grid = sweep.grid(toy_task, profile=variant)
    quick = sweep.grid(toy_task, profile="quick")
    # the same data, split and levels as quick; every level at every size
    assert grid.factorial and grid.levels == quick.levels and grid.n_eval == quick.n_eval
    assert len(grid.points()) == 6 * 4 and grid.sizes[0] == quick.sizes[0]
    todo = sweep.jobs(toy_task, profile="quick-factorial", models=["PCA"])
    assert len(todo) == 24 and all(j.profile == "quick-factorial" for j in todo)
    # a point both grids hold is two jobs with two ids: their shards cannot collide
    ours = {(j.level, j.size): j.id for j in todo}
    plain_jobs = sweep.jobs(toy_task, profile="quick", models=["PCA"])
    theirs = {(j.level, j.size): j.id for j in plain_jobs}
    shared = set(ours) & set(theirs)
    assert shared and all(ours[p] != theirs[p] for p in shared)
    # a changed copy that keeps the registered name is refused, not silently mixed with it
    with pytest.raises(ValueError, match="not the registered profile"):
        sweep.jobs(toy_task, profile=dataclasses.replace(plain, factorial=True))
    with pytest.raises(ValueError, match="not the registered profile"):
        profiles.get(dataclasses.replace(plain, name="mine"))


def test_factorial_and_plain_sweeps_share_a_results_folder(toy_task, tmp_path):
    kw = dict(models=["PCA"], results=tmp_path, progress=False)
    plain = sweep.run(toy_task, profile="smoke", **kw)
    variant = sweep.run(toy_task, profile="smoke-factorial", **kw)
    n_plain = len(sweep.jobs(toy_task, profile="smoke", models=["PCA"]))
    assert len(plain) == n_plain and len(variant) == 16 and set(variant["profile"]) == {
        "smoke-factorial"}
    assert len(sweep.Store(tmp_path).frame()) == n_plain + 16  # every shard, both grids
    # a variant trains on its base's data with its base's settings: equal points, equal MI
    on = ["level", "size", "seed", "model"]
    both = plain.merge(variant, on=on, suffixes=("", "_f"))
    assert len(both) >= 1 and np.allclose(both["mi"], both["mi_f"])
    assert np.allclose(both["x"], both["x_f"])
    again = sweep.run(toy_task, profile="smoke", **kw)
    assert set(again["profile"]) == {"smoke"} and len(again) == n_plain


def test_run_is_resumable_and_rows_carry_the_schema(toy_task, tmp_path):
    first = sweep.run(toy_task, profile="smoke", models=["PCA"], results=tmp_path, progress=False)
    assert list(first.columns[: len(run_module.RESULT_COLUMNS)]) == run_module.RESULT_COLUMNS
    assert len(first) == len(sweep.jobs(toy_task, profile="smoke", models=["PCA"]))
    assert first["mi"].notna().all() and (first["modality"] == "cell").all()
    assert (tmp_path / "results.csv").is_file()
    # a rerun finds every job done and runs nothing
    calls = []
    report = sweep.execute(
        sweep.jobs(toy_task, profile="smoke", models=["PCA"]),
        lambda job: calls.append(job) or [], sweep.Store(tmp_path), progress=False,
    )
    assert calls == [] and report.skipped == len(first)


def test_a_task_whose_probe_options_change_gets_new_job_ids(toy_task):
    def ids(spec):
        return [j.id for j in sweep.jobs(spec, profile="smoke", models=["PCA"])]

    capped = [tasks.variant(toy_task, name=f"toy_probe_{i}",
                            probe=probe.estimator_probe(paper={"max_epochs": e}))
              for i, e in enumerate((3, 3, 4))]
    try:
        one, same, other = (ids(dataclasses.replace(c, name="toy_counts")) for c in capped)
        assert one == same  # the same options: the same jobs, reused from a store
        assert not set(one) & set(other)  # another epoch cap: other jobs
        assert not set(one) & set(ids(toy_task))  # and neither is the default probe's
        job = sweep.jobs(capped[0], profile="smoke", models=["PCA"])[0]
        assert job.probe == ("_probe_estimators(methods=('canonical', 'paper'), "
                             "options={'paper': {'max_epochs': 3}})")
        assert sweep.jobs(toy_task, profile="smoke")[0].probe == "default"
    finally:
        for c in capped:
            tasks.unregister(c.name)


def test_results_csv_holds_every_model_swept_into_the_folder(toy_task, tmp_path):
    kw = dict(profile="smoke", results=tmp_path, progress=False)
    pca = sweep.run(toy_task, models=["PCA"], **kw)
    # a shard from an earlier estimator stays in the folder but not in the table
    old = dataclasses.replace(sweep.jobs(toy_task, profile="smoke", models=["PCA"])[0],
                              probe_version="2026.11.01")
    sweep.Store(tmp_path).put(old, [{"mi": 9.0}])
    rp = sweep.run(toy_task, models=["RandomProjection"], **kw)
    assert set(pca["model"]) == {"PCA"} and set(rp["model"]) == {"RandomProjection"}
    table = pd.read_csv(tmp_path / "results.csv")
    assert len(table) == len(pca) + len(rp)
    assert set(table["model"]) == {"PCA", "RandomProjection"} and (table["mi"] < 9).all()
    assert list(table.columns[: len(run_module.RESULT_COLUMNS)]) == run_module.RESULT_COLUMNS


def test_estimator_probe_measures_one_model_with_each_estimator(toy_task, tmp_path):
    """Both estimators probe the same embeddings of one trained model (one row each), and the
    fits give one curve per estimator."""
    both = probe.estimator_probe(paper={"max_epochs": 2})
    spec = tasks.variant(toy_task, name="toy_estimators", probe=both)
    try:
        largest = sweep.grid(spec, profile="smoke").sizes[-1:]
        rows = sweep.run(spec, profile="smoke", models=["PCA"], sizes=largest, results=tmp_path,
                         progress=False)
        n_jobs = len(sweep.jobs(spec, profile="smoke", models=["PCA"], sizes=largest))
    finally:
        tasks.unregister("toy_estimators")
    assert len(rows) == 2 * n_jobs and rows["estimator"].value_counts().to_dict() == {
        "canonical": n_jobs, "paper": n_jobs}
    assert (rows.groupby("level")["fit_seconds"].nunique() == 1).all()  # trained once each
    assert (rows.loc[rows["estimator"] == "paper", "epochs"] <= 2).all()
    noise_fits, _ = sweep.fit(rows)
    assert sorted(noise_fits["estimator"]) == ["canonical", "paper"]


def test_paper_estimator_gets_raw_counts():
    held = tasks.Holdout("vector", 0, *[np.arange(3)] * 3, np.log1p([[0.0, 5.0]] * 3))
    assert np.allclose(probe.paper_signal(held.target, held), [[0.0, 5.0]] * 3)
    labels = tasks.Holdout("labels", 0, *[np.arange(3)] * 3, np.array([0, 1, 1]))
    assert probe.paper_signal(labels.target, labels) is labels.target


# --------------------------------------------------------------------------------------------
# Dask gives exactly the serial rows, for every single-cell task
# --------------------------------------------------------------------------------------------
_MEASURED = ["task", "model", "level", "size", "seed", "x", "mi", "n_train", "n_eval"]


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", tasks.names(modality="cell"))
def test_dask_rows_equal_serial_rows(name, dask_client, tmp_path):
    spec = tasks.get(name)
    try:
        spec.load("smoke")
    except hdata.DataUnavailableError as err:
        pytest.skip(f"data not available: {err}")
    kw = dict(profile="smoke", models=["PCA"], progress=False)
    serial = sweep.run(spec, results=tmp_path / "serial", **kw)
    on_dask = sweep.run(spec, results=tmp_path / "dask", backend="dask", client=dask_client, **kw)
    pd.testing.assert_frame_equal(serial[_MEASURED], on_dask[_MEASURED])


class CountedLoader:
    """The loader of a task spec that holds its data (as :func:`helpers.apply.noise_scaling`'s
    holds the user's AnnData): counts how often the spec is pickled."""

    __name__ = "load_toy"
    pickled = 0

    def __call__(self):
        return _toy_counts()

    def __reduce__(self):
        CountedLoader.pickled += 1
        return (CountedLoader, ())


def test_dask_run_ships_the_task_spec_once(toy_task, tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = tasks.TaskSpec(**{
        **toy_task.__dict__, "name": "toy_shipped",
        "sources": {p: tasks.Source(CountedLoader(), "day") for p in ("quick", "paper")},
    })
    tasks.register(spec)  # as hp.apply.noise_scaling does
    CountedLoader.pickled = 0
    try:
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                      dashboard_address=":0") as cluster, \
                distributed.Client(cluster) as client:
            rows = sweep.run(spec, profile="smoke", models=["PCA"], backend="dask",
                             client=client, results=tmp_path, progress=False)
    finally:
        tasks.unregister("toy_shipped")
    n_jobs = len(sweep.jobs(spec, profile="smoke", models=["PCA"]))
    assert n_jobs > 1 and len(rows) == n_jobs and rows["mi"].notna().all()
    assert (rows["dataset"] == "toy").all()
    # scattered once (in-process workers need no pickle at all); sent with each job, the spec
    # was pickled into every job's task
    assert CountedLoader.pickled <= 1


# --------------------------------------------------------------------------------------------
# Fits and the summary
# --------------------------------------------------------------------------------------------
def law_rows(u_bar=120.0, i_max=2.5, *, sizes=(100, 300, 1000), n_sat=250.0, s=0.8):
    """Rows whose noise curve follows Eq. 1 exactly and whose full-depth points follow the
    cell-number law."""
    umis = np.geomspace(10, 2000, 6)
    level = umis / umis[-1]
    largest = sizes[-1]
    rows = [
        {"size": largest, "level": q, "x": u, "mi": laws.noise_law(u, u_bar, i_max)}
        for q, u in zip(level, umis, strict=True)
    ]
    full = laws.noise_law(umis[-1], u_bar, i_max)
    for n in sizes[:-1]:
        scale = laws.cell_law(n, n_sat, s, full) / laws.cell_law(largest, n_sat, s, full)
        rows.append({"size": n, "level": 1.0, "x": umis[-1], "mi": full * scale})
    return pd.DataFrame(rows).assign(
        modality="cell", task="toy", dataset="toy", signal="sig", model="PCA", seed=0,
        fit_seconds=2.0, probe_seconds=1.0,
    )


def test_fit_recovers_the_noise_law():
    noise_fits, cell_fits = sweep.fit(law_rows(u_bar=120.0, i_max=2.5))
    assert len(noise_fits) == 1  # the cell-number sizes (one level each) are not noise curves
    fit = noise_fits.iloc[0]
    assert fit["size"] == 1000 and fit["n_points"] == 6
    assert fit["u_bar"] == pytest.approx(120.0, rel=1e-4)
    assert fit["i_max"] == pytest.approx(2.5, rel=1e-4)
    assert fit["r_squared"] > 0.9999
    assert len(cell_fits) == 1 and int(cell_fits.iloc[0]["n_points"]) == 3


def test_fit_needs_the_result_columns():
    with pytest.raises(ValueError, match="lack the column"):
        sweep.fit(law_rows().drop(columns="x"))


def test_summarise_counts_learned_noise_curves_only():
    rising = law_rows()
    falling = law_rows().assign(model="SCVI")
    curve = falling["size"] == 1000
    falling.loc[curve, "mi"] = falling.loc[curve, "mi"].to_numpy()[::-1]
    baseline = law_rows().assign(model="RandomProjection")  # not a learned model
    results = pd.concat([rising, falling, baseline], ignore_index=True)
    noise_fits, _ = sweep.fit(results)
    summary = sweep.summarise(results, noise_fits)
    assert summary["falls_with_noise"] == 0.5
    assert summary["n_rows"] == len(results) and summary["n_noise_curves"] == 3
    assert summary["fit_minutes"] == pytest.approx(len(results) * 2.0 / 60)


def test_fit_groups_by_estimator_where_present():
    both = pd.concat([law_rows(u_bar=120.0).assign(estimator="canonical"),
                      law_rows(u_bar=300.0).assign(estimator="paper")], ignore_index=True)
    noise_fits, cell_fits = sweep.fit(both)
    u_bar = noise_fits.set_index("estimator")["u_bar"]
    assert u_bar["canonical"] == pytest.approx(120.0, rel=1e-4)
    assert u_bar["paper"] == pytest.approx(300.0, rel=1e-4)
    assert sorted(cell_fits["estimator"]) == ["canonical", "paper"]
    assert sweep.summarise(both, noise_fits)["n_noise_curves"] == 2


def test_doctests():
    for module in (jobs_module, run_module):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0


def test_profile_names_agree():
    assert set(profiles.NAMES) == {"smoke", "quick", "paper"}
    assert set(profiles.VARIANTS) == {"smoke-factorial", "quick-factorial"}
    for name in profiles.VARIANTS:
        variant, base = profiles.get(name), profiles.get(name.removesuffix("-factorial"))
        assert variant.factorial and variant.base == base.name
        # only the grid differs: data and evaluation split are the base profile's
        assert (variant.eval_fraction, variant.max_samples, variant.seeds) == (
            base.eval_fraction, base.max_samples, base.seeds)
