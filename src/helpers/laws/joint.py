r"""The joint law of cells × depth: its forms, the fit, and the choice of form (BIC).

Why not lmfit, as the noise and cell-number laws: the joint fit works on one parameter vector
θ on the optimiser's scale (logs of the positive parameters), started from the optimum of the
nested form below it (so a richer form never fits worse), and its covariance must be on that
scale, because the planner draws θ from it (:meth:`JointLawFit.sample_params`).  lmfit would
call the same optimiser (``method="least_squares"`` is scipy's trust-region reflective
:func:`scipy.optimize.least_squares`, used here directly) but report its covariance on its own
internal bound transform; working on θ keeps starts, bounds and covariance on one scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .cell import CellLawFit, _profile_cell_law, cell_law
from .common import _check_xy, _r_squared
from .noise import NoiseLawFit, noise_law

__all__ = [
    "JOINT_FORMS",
    "JOINT_RULE",
    "joint_law",
    "joint_noise_params",
    "JointLawFit",
    "fit_joint_law",
    "select_joint_form",
]


#: Candidate joint forms. Each is Eq. 1 in ``x`` with the cell-number law as its capacity,
#: :math:`I_\max(N) = I_\infty - (N/N_\mathrm{sat})^{-s}`; they differ in how ū moves with N.
JOINT_FORMS = {
    "naive": "one ū for every N (4 parameters)",
    "coupled": "ln ū(N) = ln ū∞ + β (N/N_sat)^(-s): ū moves with the capacity gap (5 parameters)",
    "free": "ln ū(N) = ln ū∞ + β (N/N_sat)^(-b): ū moves with its own exponent b (6 parameters)",
}


_JOINT_NAMES = {
    "naive": ("u_bar", "i_inf", "n_sat", "s"),
    "coupled": ("u_bar", "i_inf", "n_sat", "s", "beta"),
    "free": ("u_bar", "i_inf", "n_sat", "s", "beta", "b"),
}


#: The rule that chooses a form per grid: the lowest Bayesian information criterion among
#: :data:`JOINT_FORMS`, on the points at hand (inside cross-validation: the training folds).
JOINT_RULE = "bic"


_BELOW = {"coupled": "naive", "free": "coupled"}


_LOG_PARAMS = {"u_bar", "n_sat", "s", "b"}  # fitted on a log scale (positive)


def joint_law(n, x, *, u_bar, i_inf, n_sat, s, beta=0.0, b=None):
    r"""Auxiliary information (bits) of a model trained on ``n`` cells measured at depth ``x``.

    .. math::

        I(N, x) = \mathrm{Eq.\,1}\bigl(x;\ \bar u(N),\ I_\max(N)\bigr),\quad
        I_\max(N) = I_\infty - (N/N_\mathrm{sat})^{-s},\quad
        \ln \bar u(N) = \ln \bar u_\infty + \beta\,(N/N_\mathrm{sat})^{-b}

    with ``b = s`` unless given.  At large ``N`` this is Eq. 1 with :math:`(\bar u_\infty,
    I_\infty)`; at large ``x`` it is the cell-number law; ``beta = 0`` is the naive form.

    Examples
    --------
    >>> p = dict(u_bar=500.0, i_inf=3.0, n_sat=200.0, s=0.5, beta=0.8)
    >>> abs(float(joint_law(1e16, 800.0, **p)) - noise_law(800.0, 500.0, 3.0)) < 1e-6
    True
    >>> abs(float(joint_law(800.0, 1e15, **p)) - cell_law(800.0, 200.0, 0.5, 3.0)) < 1e-6
    True
    """
    u, i_max = joint_noise_params(n, u_bar=u_bar, i_inf=i_inf, n_sat=n_sat, s=s, beta=beta, b=b)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return noise_law(x, u, i_max)


def joint_noise_params(n, *, u_bar, i_inf, n_sat, s, beta=0.0, b=None):
    """The parameters (ū(N), I_max(N)) of Eq. 1 at ``n`` training cells under the joint law.

    Examples
    --------
    >>> u, i = joint_noise_params(300.0, u_bar=500.0, i_inf=3.0, n_sat=300.0, s=0.5, beta=1.0)
    >>> round(float(u / 500.0), 4), float(i)
    (2.7183, 2.0)
    """
    n = np.asarray(n, dtype=float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        ratio = n / n_sat
        i_max = i_inf - np.power(ratio, -s)
        shift = beta * np.power(ratio, -(s if b is None else b))
        u = u_bar * np.exp(np.clip(shift, -50.0, 50.0))
    return u, i_max


def _joint_params(theta, form):
    names = _JOINT_NAMES[form]
    return {
        k: float(np.exp(v)) if k in _LOG_PARAMS else float(v)
        for k, v in zip(names, theta, strict=True)
    }


def _joint_eval(theta, n, x, form):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return joint_law(n, x, **_joint_params(theta, form))


def _fd_jacobian(fun, theta, *, step=1e-6):
    """Central-difference Jacobian of ``fun`` (vector-valued) at ``theta``."""
    theta = np.asarray(theta, dtype=float)
    cols = []
    for k in range(theta.size):
        h = step * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        cols.append((fun(up) - fun(down)) / (2 * h))
    return np.column_stack(cols)


@dataclass
class JointLawFit:
    """Result of :func:`fit_joint_law`.

    Attributes
    ----------
    form
        The joint form (a key of :data:`JOINT_FORMS`).
    params, errors
        Fitted parameters (``u_bar`` is ū∞, the large-N noise scale) and their one-standard
        errors from the fit covariance (delta method for the log-scale ones).
    theta, cov
        The fitted vector on the optimiser's scale (log for positive parameters) and its
        covariance, for sampling (:meth:`sample_params`) and bands (:meth:`band`).
    domain
        The range of ``n`` and of ``x`` the fit saw (beyond it the law extrapolates).
    r_squared
        Coefficient of determination over every point.
    saved_resid_sd
        The residual scatter of a fit rebuilt from JSON (:attr:`resid_sd` computes it from
        the points when they are there).
    """

    form: str
    n: np.ndarray = field(repr=False)
    x: np.ndarray = field(repr=False)
    mi: np.ndarray = field(repr=False)
    theta: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    params: dict
    errors: dict
    r_squared: float
    success: bool
    domain: dict = field(default_factory=dict)
    saved_resid_sd: float = field(default=float("nan"), repr=False)

    @property
    def n_points(self) -> int:
        return int(self.mi.size)

    @property
    def bic(self) -> float:
        r"""Bayesian information criterion of the fit, :math:`m \ln(\mathrm{RSS}/m) + k \ln m`
        over its ``m`` points and ``k`` parameters (``nan`` for a fit rebuilt from JSON)."""
        m, k = self.n_points, self.theta.size
        if m == 0:
            return float("nan")
        rss = float(np.sum((self.mi - self.predict(self.n, self.x)) ** 2))
        return float(m * np.log(max(rss, 1e-300) / m) + k * np.log(m))

    @property
    def constrained(self) -> bool:
        """Every error is finite and smaller than its value (``beta`` may be near zero)."""
        return all(
            np.isfinite(self.errors[k]) and (k == "beta" or self.errors[k] < abs(self.params[k]))
            for k in self.params
        )

    def predict(self, n, x):
        """The fitted law at ``n`` cells and depth ``x`` (broadcast)."""
        return joint_law(n, x, **self.params)

    def u_bar_at(self, n):
        """The noise scale ū(N) of Eq. 1 at ``n`` training cells."""
        return joint_noise_params(n, **self.params)[0]

    def i_max_at(self, n):
        """The capacity I_max(N) of Eq. 1 at ``n`` training cells (the cell-number law)."""
        return joint_noise_params(n, **self.params)[1]

    @property
    def noise_edge(self) -> NoiseLawFit:
        """The large-N edge: Eq. 1 with (ū∞, I∞), shown on the points of the largest N."""
        keep = self.n == self.n.max()
        p, e = self.params, self.errors
        fitted = noise_law(self.x[keep], p["u_bar"], p["i_inf"])
        return NoiseLawFit(
            x=self.x[keep], mi=self.mi[keep], result=None,
            r_squared=_r_squared(self.mi[keep], fitted) if keep.sum() > 1 else float("nan"),
            success=self.success, constrained=self.constrained,
            u_bar=p["u_bar"], i_max=p["i_inf"], u_bar_err=e["u_bar"], i_max_err=e["i_inf"],
        )

    @property
    def cell_edge(self) -> CellLawFit:
        """The large-x edge: the cell-number law, shown on the points of the largest x."""
        keep = self.x == self.x.max()
        p, e = self.params, self.errors
        fitted = cell_law(self.n[keep], p["n_sat"], p["s"], p["i_inf"])
        return CellLawFit(
            x=self.n[keep], mi=self.mi[keep], result=None,
            r_squared=_r_squared(self.mi[keep], fitted) if keep.sum() > 1 else float("nan"),
            success=self.success, constrained=self.constrained,
            n_sat=p["n_sat"], s=p["s"], i_inf=p["i_inf"],
            n_sat_err=e["n_sat"], s_err=e["s"], i_inf_err=e["i_inf"],
            mean_abs_residual=float(np.mean(np.abs(self.mi[keep] - fitted))),
        )

    def band(self, n, x, *, sigma: float = 2.0):
        """Lower and upper edges of the ``sigma`` band of the fitted surface (delta method)."""
        n, x = np.broadcast_arrays(np.asarray(n, float), np.asarray(x, float))
        mid = self.predict(n, x)
        jac = _fd_jacobian(lambda t: _joint_eval(t, n.ravel(), x.ravel(), self.form), self.theta)
        var = np.einsum("ij,jk,ik->i", jac, self.cov, jac).reshape(n.shape)
        half = sigma * np.sqrt(np.clip(var, 0, None))
        return mid - half, mid + half

    @property
    def resid_sd(self) -> float:
        """Residual scatter of the fit (bits): seed-to-seed and cell-to-cell spread that the
        surface does not explain, ``sqrt(RSS / (m − k))`` (stored for a fit rebuilt from
        JSON)."""
        if self.n_points == 0:
            return float(self.saved_resid_sd)
        rss = float(np.sum((self.mi - self.predict(self.n, self.x)) ** 2))
        return float(np.sqrt(rss / max(self.n_points - self.theta.size, 1)))

    def predictive_variance(self, n, x, *, kappa: float):
        """Variance (bits²) of a new measurement at ``(n, x)``: the surface's delta-method
        variance (0 where the fit has no finite covariance), the residual scatter and the
        model-form error ``(kappa · decades beyond the fitted cells)²``."""
        from .calibration import decades_beyond

        n, x = np.broadcast_arrays(np.asarray(n, float), np.asarray(x, float))
        if np.all(np.isfinite(self.cov)):
            jac = _fd_jacobian(lambda t: _joint_eval(t, n.ravel(), x.ravel(), self.form),
                               self.theta)
            var = np.einsum("ij,jk,ik->i", jac, self.cov, jac).reshape(n.shape)
            var = np.where(np.isfinite(var), np.clip(var, 0, None), 0.0)
        else:
            var = np.zeros(n.shape)
        sd = self.resid_sd
        return var + (sd**2 if np.isfinite(sd) else 0.0) + (kappa * decades_beyond(self, n)) ** 2

    def interval(self, n, x, *, level: float = 0.9, calibration: dict | None = None):
        """Predictive interval ``(lo, hi)`` of the MI a new experiment of ``n`` cells at depth
        ``x`` would measure, calibrated by extrapolation (:mod:`helpers.laws.calibration`).

        Unlike :meth:`band` (the fitted surface's own uncertainty) it adds the seed scatter and
        the error of the law's form beyond the cells it was fitted on, learned on the
        released grids; on them a fit to the sizes up to a tenth of the largest covers about
        90 % of the largest size's cells at ``level = 0.9`` (``benchmarks/extrapolation.py``).
        """
        from .calibration import kappa

        if not 0 < level < 1:
            msg = f"level must be in (0, 1) (got {level!r})."
            raise ValueError(msg)
        mid = self.predict(n, x)
        z = float(_norm_ppf(0.5 + level / 2))
        half = z * np.sqrt(self.predictive_variance(n, x, kappa=kappa(self.form, calibration)))
        return mid - half, mid + half

    def sample_params(self, size: int, *, seed: int = 0) -> list[dict]:
        """``size`` parameter sets drawn from the fit's (log-scale) normal approximation.

        Raises
        ------
        ValueError
            If the fit has no finite covariance (an unconstrained direction, e.g. a model whose
            information does not depend on N at all).
        """
        if not np.all(np.isfinite(self.cov)):
            msg = f"This {self.form!r} fit has no finite covariance to sample from."
            raise ValueError(msg)
        rng = np.random.default_rng(seed)
        vals, vecs = np.linalg.eigh(0.5 * (self.cov + self.cov.T))
        root = vecs * np.sqrt(np.clip(vals, 0, None))  # PSD part: round-off negatives dropped
        draws = self.theta + rng.standard_normal((size, self.theta.size)) @ root.T
        with np.errstate(over="ignore"):
            return [_joint_params(t, self.form) for t in draws]

    def to_dict(self) -> dict:
        """Parameters, errors and the covariance as plain JSON-ready values."""
        return {
            "law": "joint",
            "form": self.form,
            "params": dict(self.params),
            "errors": dict(self.errors),
            "theta": [float(v) for v in self.theta],
            "cov": np.asarray(self.cov, float).tolist(),
            "r_squared": self.r_squared,
            "resid_sd": self.resid_sd if np.isfinite(self.resid_sd) else None,
            "n_points": self.n_points,
            "success": self.success,
            "domain": {k: [float(v) for v in lims] for k, lims in self.domain.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> JointLawFit:
        """Rebuild a fit saved with :meth:`to_dict` (the data points are not stored)."""
        if not isinstance(d, dict) or d.get("law") != "joint" or d.get("form") not in JOINT_FORMS:
            got = (d.get("law"), d.get("form")) if isinstance(d, dict) else (type(d).__name__,)
            msg = f"Not a saved joint-law fit (law, form = {got!r})."
            raise ValueError(msg)
        form = d["form"]
        names = _JOINT_NAMES[form]
        try:
            theta = np.asarray(d["theta"], float)
            cov = np.asarray(d["cov"], float)
            params = {k: float(v) for k, v in d["params"].items()}
            errors = {k: float(v) for k, v in d["errors"].items()}
            r_squared, success = float(d["r_squared"]), d["success"]
            domain = {k: tuple(float(b) for b in v) for k, v in d.get("domain", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            msg = f"A saved joint-law fit is incomplete or malformed: {err}."
            raise ValueError(msg) from None
        problems = []
        if not isinstance(success, bool):
            problems.append(f"success is {success!r}, not true or false")
        if theta.shape != (len(names),) or not np.isfinite(theta).all():
            problems.append(f"theta must be {len(names)} finite numbers")
        elif set(params) != set(names) or any(
                not np.isclose(params[k], v, rtol=1e-9, atol=0)
                for k, v in _joint_params(theta, form).items()):
            problems.append("its parameters do not follow from its theta (edited?)")
        if cov.shape != (len(names), len(names)):
            problems.append(f"cov must be a {len(names)} x {len(names)} matrix")
        elif not np.allclose(cov, cov.T, equal_nan=True) or (np.diag(cov) < 0).any():
            problems.append("cov is not a covariance (asymmetric or negative variances)")
        if set(errors) != set(names) or any(v < 0 for v in errors.values()):
            problems.append("errors must be one non-negative number (or NaN) per parameter")
        if not np.isfinite(r_squared) or r_squared > 1:
            problems.append(f"r_squared {r_squared!r} is not a coefficient of determination")
        for key, bounds in domain.items():
            if len(bounds) != 2 or not (0 < bounds[0] <= bounds[1] < np.inf):
                problems.append(f"domain {key!r} is not a positive range")
        if problems:
            msg = "Not a valid saved joint-law fit: " + "; ".join(problems) + "."
            raise ValueError(msg)
        empty = np.array([], dtype=float)
        fit = cls(
            form=form, n=empty, x=empty, mi=empty, theta=theta, cov=cov, params=params,
            errors=errors, r_squared=r_squared, success=success, domain=domain,
        )
        resid_sd = d.get("resid_sd")
        if resid_sd is not None:
            if not (isinstance(resid_sd, int | float) and resid_sd >= 0):
                msg = f"Not a valid saved joint-law fit: resid_sd {resid_sd!r} is not a scatter."
                raise ValueError(msg)
            fit.saved_resid_sd = float(resid_sd)
        return fit


def _norm_ppf(p):
    from scipy import stats

    return stats.norm.ppf(p)


def _joint_starts(n, x, y):
    """Starting vectors of the naive form: cell-law parameters from the deepest points, ū grid."""
    top = x >= np.quantile(x, 0.8)
    sizes = np.unique(n[top])
    if sizes.size >= 4:
        means = np.array([y[top & (n == k)].mean() for k in sizes])
        free = {"n_sat": (0.0, np.inf), "i_inf": (-np.inf, np.inf)}
        _, s0, (i0, c0) = _profile_cell_law(sizes, means, np.geomspace(1e-2, 5.0, 120), free)
        log_nsat0 = np.log(c0) / s0 if c0 > 0 else np.log(n.min()) - 3.0
    else:
        s0, i0, log_nsat0 = 0.5, float(y.max()), float(np.log(n.min()))
    i0 = max(i0, float(y.max())) + 0.1
    positive = x[x > 0]
    return [
        np.array([np.log(u), i0, log_nsat0, np.log(s0)])
        for u in np.geomspace(positive.min(), positive.max() * 3, 6)
    ]


def _extend_starts(theta, form):
    """Starts of a richer form from the optimum of the form below it (β = 0 reproduces it)."""
    if form == "coupled":
        return [np.append(theta, beta) for beta in (0.0, -1.0, 1.0)]
    # free from coupled: b starts at s and on either side of it, and, in case ū settles at a
    # rate of its own far from the capacity's, from a shallow and a unit exponent with β = ±1
    log_s = theta[3]
    near = [np.append(theta, log_s + d) for d in (0.0, -np.log(2), np.log(2))]
    apart = [np.append(np.r_[theta[:4], beta], np.log(b)) for beta in (-1.0, 1.0)
             for b in (0.3, 1.0)]
    return near + apart


def fit_joint_law(n, x, mi, *, form: str = "coupled", starts=None,
                  below: JointLawFit | None = None) -> JointLawFit:
    r"""Least-squares fit of the joint cells × depth law (:func:`joint_law`) to a grid.

    Every point is used (each seed separately).  The fit is started from several points —
    cell-number-law parameters profiled on the deepest points, a geometric grid of ū over
    the range of ``x``, and a few values of β (and b) — and the lowest residual wins.
    Errors come from the Jacobian at the optimum, :math:`\mathrm{cov} = \hat\sigma^2
    (J^\top J)^{-1}`.

    Parameters
    ----------
    n
        Training cells of each point; positive.
    x
        Signal-to-noise power of each point (mean UMIs per cell); non-negative.
    mi
        Auxiliary information of each point, bits.
    form
        ``"naive"`` (one ū), ``"coupled"`` (ū moves with the capacity gap; the default),
        ``"free"`` (ū with its own exponent), or ``"bic"`` (:data:`JOINT_RULE`): all three,
        returning the one of lowest BIC (see :func:`select_joint_form`).
    starts
        Optional extra starting vectors on the optimiser's scale.
    below
        A fit of the next simpler form on the same points (``naive`` for ``coupled``,
        ``coupled`` for ``free``) to start from; fitted here when not given.

    Returns
    -------
    JointLawFit

    Raises
    ------
    ValueError
        Mismatched lengths, non-finite values, an unknown form, fewer than 2 distinct ``n``
        or ``x``, or fewer points than twice the parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n, x = (a.ravel() for a in np.meshgrid(np.geomspace(100, 1e5, 8), np.geomspace(10, 1e4, 8)))
    >>> truth = dict(u_bar=600.0, i_inf=2.5, n_sat=300.0, s=0.6, beta=1.0)
    >>> y = joint_law(n, x, **truth) + rng.normal(0, 0.03, n.size)
    >>> fit = fit_joint_law(n, x, y, form="coupled")
    >>> abs(fit.params["i_inf"] - 2.5) < 0.1, abs(fit.params["u_bar"] / 600 - 1) < 0.2
    (True, True)
    """
    from scipy.optimize import least_squares

    if form == JOINT_RULE:
        return select_joint_form(_fit_chain(n, x, mi, tuple(JOINT_FORMS)).values())
    if form not in JOINT_FORMS:
        msg = f"Unknown joint form {form!r}; choose one of {sorted(JOINT_FORMS)} or {JOINT_RULE!r}."
        raise ValueError(msg)
    n, y = _check_xy(n, mi, name_x="n", positive_x=True)
    x, _ = _check_xy(x, mi, name_x="x")
    names = _JOINT_NAMES[form]
    if np.unique(n).size < 2 or np.unique(x).size < 2:
        msg = "A joint fit needs at least 2 distinct training sizes and 2 distinct depths."
        raise ValueError(msg)
    if y.size < 2 * len(names):
        msg = f"A {form!r} joint fit needs at least {2 * len(names)} points (got {y.size})."
        raise ValueError(msg)

    def resid(theta):
        out = _joint_eval(theta, n, x, form) - y
        return np.where(np.isfinite(out), out, 1e3)

    if form == "naive":
        candidates = _joint_starts(n, x, y)
    else:  # nested forms: start from the optimum of the form below, so a richer form never loses
        if below is None or below.form != _BELOW[form]:
            below = fit_joint_law(n, x, y, form=_BELOW[form])
        candidates = _extend_starts(below.theta, form)
    candidates += [np.asarray(t, float) for t in (starts or [])]
    # N_sat at most 10x the largest training size: beyond it the data cannot tell I_inf from
    # a logarithm in N (s -> 0, N_sat -> inf, I_inf -> inf all fit alike); s in [0.01, 10].
    lower = np.full(len(names), -np.inf)
    upper = np.full(len(names), np.inf)
    upper[2] = np.log(10 * n.max())
    lower[3], upper[3] = np.log(0.01), np.log(10.0)
    if form == "free":
        lower[5], upper[5] = np.log(0.01), np.log(10.0)
    best = None
    for start in candidates:
        start = np.clip(start, lower + 1e-9, upper - 1e-9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = least_squares(resid, start, method="trf", bounds=(lower, upper),
                                    x_scale="jac", max_nfev=4000)
            except (ValueError, FloatingPointError):
                continue
        if np.isfinite(res.cost) and (best is None or res.cost < best.cost):
            best = res
    if best is None:  # pragma: no cover - every start failed
        msg = "The joint fit failed from every starting point."
        raise RuntimeError(msg)

    theta = best.x
    params = _joint_params(theta, form)
    dof = max(y.size - theta.size, 1)
    jac = _fd_jacobian(lambda t: _joint_eval(t, n, x, form), theta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cov = np.linalg.inv(jac.T @ jac) * float(np.sum(best.fun**2)) / dof
            ok = bool(np.all(np.isfinite(cov)) and np.all(np.diag(cov) >= 0))
        except np.linalg.LinAlgError:
            cov, ok = np.full((theta.size, theta.size), np.nan), False
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(over="ignore", invalid="ignore"):
        errors = {
            k: float(params[k] * sd[i]) if k in _LOG_PARAMS else float(sd[i])
            for i, k in enumerate(names)
        }
    fitted = _joint_eval(theta, n, x, form)
    return JointLawFit(
        form=form, n=n, x=x, mi=y, theta=theta, cov=cov, params=params, errors=errors,
        r_squared=_r_squared(y, fitted), success=bool(best.success and ok),
        domain={"n": (float(n.min()), float(n.max())), "x": (float(x.min()), float(x.max()))},
    )


def _fit_chain(n, x, mi, forms) -> dict:
    """Fits of ``forms`` (a prefix of naive, coupled, free), each started from the one below."""
    prev, fits = None, {}
    for form in forms:
        prev = fits[form] = fit_joint_law(n, x, mi, form=form, below=prev)
    return fits


def select_joint_form(fits) -> JointLawFit:
    """The fit of lowest BIC among fits of the same points (the rule :data:`JOINT_RULE`).

    Richer forms must lower the residual enough to pay for their parameters, so a grid whose
    noise scale does not move with N (a random projection learns nothing from cells) keeps
    the naive form, and a grid whose noise scale does takes a richer one.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> n, x = (a.ravel() for a in np.meshgrid(np.geomspace(100, 1e5, 6), np.geomspace(10, 1e4, 6)))
    >>> flat = dict(u_bar=400.0, i_inf=2.0, n_sat=200.0, s=0.5)
    >>> y = joint_law(n, x, **flat) + rng.normal(0, 0.02, n.size)
    >>> fit_joint_law(n, x, y, form="bic").form
    'naive'
    >>> y = joint_law(n, x, **flat, beta=1.5) + rng.normal(0, 0.02, n.size)
    >>> fit_joint_law(n, x, y, form="bic").form
    'coupled'
    """
    return min(fits, key=lambda fit: fit.bic)
