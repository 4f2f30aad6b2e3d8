"""The interactive scaling zoo: every published noise curve with its fitted law, offline.

:func:`zoo_tables` fits Eq. 1 to every curve of a tidy table (by default the paper's released
ones, :func:`helpers.published.noise_curves`) and pre-aggregates what the page draws — the
measured points, the fitted law on a grid, and the collapse coordinates — so the page carries
kilobytes, not the raw tables.  :func:`zoo_layout` builds a Bokeh layout with selectors for
modality, task, model and training size, a curve panel and a collapse panel, and hover tools
that show the point and the fit; :func:`write_zoo` writes it as one self-contained HTML file
whose JavaScript is inlined (no CDN, no server), and :func:`zoo_html_fragment` gives the same
for a book page.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import laws
from .plots import MODEL_COLORS, TASK_COLORS

__all__ = ["write_zoo", "zoo_html_fragment", "zoo_layout", "zoo_tables"]

_KEYS = ["modality", "task", "model", "size", "curve"]
_ALL = "(all)"
_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def _color(modality, model) -> str:
    return MODEL_COLORS.get(model, TASK_COLORS.get(modality, "#444444"))


def zoo_tables(curves: pd.DataFrame | None = None, *, fit_points: int = 48):
    """Fit every curve and return the three tables the zoo draws.

    Parameters
    ----------
    curves
        Tidy points with columns ``modality, task, model, size, curve, x, mi`` (default:
        :func:`helpers.published.noise_curves`).
    fit_points
        Points on which each fitted law is drawn.

    Returns
    -------
    points, fits, lines : pandas.DataFrame
        ``points``: one row per measured point with its curve's keys, the fitted value
        ``fit_mi`` and the collapse coordinates ``z, y`` (NaN for unconstrained fits).
        ``fits``: one row per curve with ``u_bar, i_max`` (and errors), ``r_squared``,
        ``constrained`` and ``color``.  ``lines``: one row per curve with the fitted law as
        lists ``xs, ys``.

    Examples
    --------
    >>> x = np.tile(np.geomspace(10, 1e4, 8), 2)
    >>> df = pd.DataFrame({"modality": "Single cell", "task": "T", "model": "PCA",
    ...                    "size": 100.0, "curve": "T · PCA", "x": x,
    ...                    "mi": laws.noise_law(x, 300.0, 2.0) + 0.01 * np.sin(x)})
    >>> points, fits, lines = zoo_tables(df)
    >>> len(points), round(float(fits["i_max"].iloc[0]), 1), len(lines["xs"].iloc[0])
    (16, 2.0, 48)
    """
    if curves is None:
        from . import published

        curves = published.noise_curves()
    missing = [c for c in [*_KEYS, "x", "mi"] if c not in curves.columns]
    if missing:
        msg = f"zoo_tables needs columns {missing} (the table has {list(curves.columns)})."
        raise ValueError(msg)
    df = curves.assign(size=curves["size"].fillna(-1))
    fits = laws.fit_table(df, _KEYS, law="noise", x="x", y="mi")
    point_rows, line_rows = [], []
    for row in fits.itertuples():
        fit = row.fit
        keep = (df["curve"] == row.curve) & (df["size"] == row.size) & (df["task"] == row.task)
        pts = df.loc[keep, [*_KEYS, "x", "mi"]].copy()
        ok = fit is not None and np.isfinite(fit.u_bar)
        pts["fit_mi"] = fit.predict(pts["x"].to_numpy()) if ok else np.nan
        if ok and row.constrained:
            z, y = laws.noise_collapse(pts["x"].to_numpy(), pts["mi"].to_numpy(), fit.u_bar,
                                       fit.i_max)
        else:
            z = y = np.full(len(pts), np.nan)
        pts["z"], pts["y"] = z, y
        point_rows.append(pts)
        if ok:
            positive = pts["x"][pts["x"] > 0]
            grid = np.geomspace(positive.min() / 1.5, positive.max() * 1.5, fit_points)
            line_rows.append({"curve": row.curve, "size": row.size, "task": row.task,
                              "xs": grid.tolist(), "ys": fit.predict(grid).tolist()})
    points = pd.concat(point_rows, ignore_index=True)
    fits = fits.drop(columns="fit").assign(
        color=[_color(m, mo) for m, mo in zip(fits["modality"], fits["model"], strict=True)]
    )
    lines = pd.DataFrame(line_rows)
    return points, fits, lines


def zoo_layout(points: pd.DataFrame, fits: pd.DataFrame, lines: pd.DataFrame, *,
               width: int = 560, height: int = 420):
    """A Bokeh layout: selectors, the noise curves with their fits, and the collapse view.

    The selectors filter every panel in the browser (a small ``CustomJS`` callback over the
    pre-aggregated columns), so the page needs no server.
    """
    from bokeh.layouts import column, row
    from bokeh.models import (
        BooleanFilter,
        CDSView,
        ColumnDataSource,
        CustomJS,
        Div,
        HoverTool,
        MultiSelect,
        Select,
    )
    from bokeh.plotting import figure

    info = fits.set_index(["curve", "size", "task"])

    def _attach(frame):
        idx = pd.MultiIndex.from_frame(frame[["curve", "size", "task"]])
        sub = info.reindex(idx)
        return frame.assign(
            u_bar=sub["u_bar"].to_numpy(), i_max=sub["i_max"].to_numpy(),
            r2=sub["r_squared"].to_numpy(), color=sub["color"].to_numpy(),
            modality=sub["modality"].to_numpy(), model=sub["model"].to_numpy(),
        )

    pts = _attach(points).assign(
        size_label=lambda d: np.where(d["size"] > 0, d["size"].map("{:,.0f}".format), "—")
    )
    lns = _attach(lines).assign(
        size_label=lambda d: np.where(d["size"] > 0, d["size"].map("{:,.0f}".format), "—")
    )
    numeric = ["x", "mi", "fit_mi", "z", "y", "u_bar", "i_max", "r2"]  # sent as binary arrays
    text = ["curve", "task", "model", "modality", "size_label", "color"]
    pts_src = ColumnDataSource(data={
        **{c: pts[c].to_numpy(dtype=np.float32) for c in numeric},
        **{c: pts[c].tolist() for c in text},
    })
    lns_src = ColumnDataSource(data={
        "xs": [np.asarray(v, dtype=np.float32) for v in lns["xs"]],
        "ys": [np.asarray(v, dtype=np.float32) for v in lns["ys"]],
        **{c: lns[c].to_numpy(dtype=np.float32) for c in ("u_bar", "i_max", "r2")},
        **{c: lns[c].tolist() for c in text},
    })
    pts_view = CDSView(filter=BooleanFilter(booleans=[True] * len(pts)))
    lns_view = CDSView(filter=BooleanFilter(booleans=[True] * len(lns)))
    z_ok = np.isfinite(pts["z"]) & (pts["z"] > 0)
    z_grid = np.geomspace(float(pts.loc[z_ok, "z"].min()), float(pts.loc[z_ok, "z"].max()), 200)
    uni_src = ColumnDataSource(data={"z": z_grid, "y": laws.universal_noise_curve(z_grid)})

    curves_fig = figure(width=width, height=height, x_axis_type="log", title="Noise curves",
                        x_axis_label="signal-to-noise power x (UMIs per cell, 1/σ², …)",
                        y_axis_label="auxiliary MI (bits)", tools=_TOOLS)
    fit_r = curves_fig.multi_line("xs", "ys", source=lns_src, view=lns_view, line_color="color",
                                  line_width=1.6, line_alpha=0.8, line_dash="dashed")
    pt_r = curves_fig.scatter("x", "mi", source=pts_src, view=pts_view, color="color", size=5,
                              alpha=0.6)
    curves_fig.add_tools(HoverTool(renderers=[pt_r], tooltips=[
        ("curve", "@curve"), ("training size", "@size_label"), ("x", "@x{0,0.[000]}"),
        ("MI", "@mi{0.000} bits"), ("fit at x", "@fit_mi{0.000} bits"),
        ("ū, I_max", "@u_bar{0.[000]}, @i_max{0.00}"), ("R²", "@r2{0.000}")]))
    curves_fig.add_tools(HoverTool(renderers=[fit_r], tooltips=[
        ("fit", "@curve"), ("training size", "@size_label"), ("ū", "@u_bar{0,0.[000]}"),
        ("I_max", "@i_max{0.00} bits"), ("R²", "@r2{0.000}")]))

    collapse_fig = figure(width=width, height=height, x_axis_type="log", title="Collapse (Eq. 1)",
                          x_axis_label="z = (x/ū + A)/(1 − A),  A = 2^(−2 I_max)",
                          y_axis_label="I − I_max (bits)", tools=_TOOLS)
    collapse_fig.line("z", "y", source=uni_src, color="black", line_width=2,
                      legend_label="universal curve")
    c_r = collapse_fig.scatter("z", "y", source=pts_src, view=pts_view, color="color", size=5,
                               alpha=0.6)
    collapse_fig.add_tools(HoverTool(renderers=[c_r], tooltips=[
        ("curve", "@curve"), ("x", "@x{0,0.[000]}"), ("MI", "@mi{0.000} bits"),
        ("z, I − I_max", "@z{0.000}, @y{0.000}")]))
    collapse_fig.legend.location = "bottom_right"

    def options(col):
        return [_ALL, *sorted({str(v) for v in pts[col]})]

    modality = Select(title="Modality", value=_ALL, options=options("modality"), name="modality")
    task = Select(title="Task", value=_ALL, options=options("task"), name="task")
    model = Select(title="Model", value=_ALL, options=options("model"), name="model")
    sizes = sorted({s for s in pts["size_label"] if s != "—"},
                   key=lambda s: float(s.replace(",", "")))
    size = MultiSelect(title="Training size (single cell)", value=[], options=sizes, size=6,
                       name="size")
    count = Div(text="", name="count")
    callback = CustomJS(
        args=dict(pts=pts_src, lns=lns_src, pts_view=pts_view, lns_view=lns_view,
                  modality=modality, task=task, model=model, size=size, count=count,
                  ALL=_ALL),
        code="""
const keep = (d, i) =>
    (modality.value === ALL || d.modality[i] === modality.value) &&
    (task.value === ALL || d.task[i] === task.value) &&
    (model.value === ALL || d.model[i] === model.value) &&
    (size.value.length === 0 || size.value.includes(d.size_label[i]));
function mask(src) {
    const d = src.data;
    return Array.from({length: d.curve.length}, (_, i) => keep(d, i));
}
const p = mask(pts), l = mask(lns);
pts_view.filter = new pts_view.filter.constructor({booleans: p});
lns_view.filter = new lns_view.filter.constructor({booleans: l});
count.text = `${l.filter(Boolean).length} curves, ${p.filter(Boolean).length} points`;
""",
    )
    for widget in (modality, task, model):
        widget.js_on_change("value", callback)
    size.js_on_change("value", callback)
    n_curves = len(lines)
    count.text = f"{n_curves} curves, {len(points)} points"
    controls = column(modality, task, model, size, count, width=260)
    return row(controls, column(row(curves_fig, collapse_fig)))


def zoo_html_fragment(layout) -> str:
    """The layout as an HTML fragment for a book page: inlined BokehJS, script and div."""
    from bokeh.embed import components
    from bokeh.resources import INLINE

    script, div = components(layout)
    return INLINE.render() + script + div


def write_zoo(path, points: pd.DataFrame, fits: pd.DataFrame, lines: pd.DataFrame, *,
              title: str = "The scaling zoo") -> Path:
    """Write the zoo as one self-contained HTML file (BokehJS inlined), atomically.

    Also writes ``<path stem>.json`` with the fitted parameters of every curve.
    """
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = file_html(zoo_layout(points, fits, lines), resources=INLINE, title=title)
    meta = json.dumps(fits.to_dict(orient="records"), default=float)
    from .sweep.store import write_atomic

    for text, target in ((html, path), (meta, path.with_suffix(".json"))):
        write_atomic(target, lambda fh, text=text: fh.write(text), encoding="utf-8")
    return path
