"""The zoo's tables and page, without a browser (see test_zoo_browser.py for one)."""

import re

import numpy as np
import pandas as pd
import pytest

from helpers import laws, zoo


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    frames = []
    for modality, model, u, i in (("Single cell", "PCA", 300.0, 2.0),
                                  ("Image", "MobileNetV3", 0.5, 1.0)):
        x = np.repeat(np.geomspace(u / 100, u * 100, 9), 2)
        frames.append(pd.DataFrame({
            "modality": modality, "task": f"{modality} task", "model": model,
            "size": 1000.0 if modality == "Single cell" else np.nan,
            "curve": f"{modality} curve", "x": x,
            "mi": laws.noise_law(x, u, i) + rng.normal(0, 0.02, x.size),
        }))
    return zoo.zoo_tables(pd.concat(frames, ignore_index=True))


def test_tables_hold_points_fits_and_collapse(tables):
    points, fits, lines = tables
    assert len(fits) == 2 and len(points) == 36 and len(lines) == 2
    assert fits["constrained"].all()
    # the collapse coordinates put every point on the universal curve, up to the noise
    resid = points["y"] - laws.universal_noise_curve(points["z"])
    assert np.abs(resid).max() < 0.1
    np.testing.assert_allclose(points["fit_mi"], points["mi"], atol=0.1)
    assert set(fits["color"]) == {"#3c4ebf", "#1D4289"}


def test_page_is_self_contained(tables, tmp_path):
    page = zoo.write_zoo(tmp_path / "zoo.html", *tables)
    html = page.read_text()
    assert not re.search(r"<script[^>]+src=", html)  # no script loaded from anywhere
    assert "cdn.bokeh.org" not in html and "Bokeh" in html
    for name in ("modality", "task", "model", "size", "count"):
        assert f'"name":"{name}"' in html.replace(" ", "")
    assert (tmp_path / "zoo.json").exists()
    fragment = zoo.zoo_html_fragment(zoo.zoo_layout(*tables))
    assert "<div" in fragment and not re.search(r"<script[^>]+src=", fragment)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="needs columns"):
        zoo.zoo_tables(pd.DataFrame({"x": [1.0], "mi": [0.1]}))
