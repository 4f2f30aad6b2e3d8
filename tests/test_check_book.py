"""scripts/check_book.py: the browser check of the built book fails on what a reader would see.

A tiny fixture book is written here: one good page (MathJax from the book's own copy, an image,
a resolved reference, ``$$`` inside code) and pages each seeded with one failure.  The browser
test needs Debian's ``chromium`` and is skipped without it; the rules behind it are also tested
without a browser.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check = _load("check_book", REPO / "scripts" / "check_book.py")
assets = _load("offline_assets", REPO / "book" / "_ext" / "offline_assets.py")

CHROMIUM = check.find_chromium()
_no_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (apt-get install chromium): the browser check is skipped",
)


def needs_chromium(test):
    return pytest.mark.slow(_no_chromium(test))

# a 2×2 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8AARAwMDAwMAB/sA/1Z3JLhAAAAAElF"
    "TkSuQmCC"
)
MATHJAX = (  # as Sphinx writes it, with the book's own MathJax
    '<script>window.MathJax = {{"options": {{"processHtmlClass": '
    '"tex2jax_process|mathjax_process|math|output_area"}}}}</script>'
    '<script defer src="{up}_static/mathjax/tex-chtml.js"></script>'
)
GOOD_BODY = r"""
<h1>Theory</h1>
<p>The law <span class="math notranslate nohighlight">\(I = \tfrac12\log_2(1 + x/\bar u)\)</span>
is drawn in <a class="reference internal" href="#fig-law"><span class="std std-numref">Fig. 1</span>
</a>.</p>
<div class="math notranslate nohighlight">\[ x = \eta^2 \]</div>
<figure id="fig-law"><img src="{up}_images/law.png" alt="law">
<figcaption>Fig. 1</figcaption></figure>
<pre>echo "$$HOME" and \(not math in code\)</pre>
"""
SEEDED = {
    "external.html": ('<script src="https://cdn.example.org/mathjax.js"></script>',
                      "external request: https://cdn.example.org/mathjax.js"),
    "raw_math.html": ("<p>an unclosed $$x^2 equation</p>", "raw math in text"),
    "cdn_mathjax.html": (None, "MathJax did not load"),
    "broken_img.html": ('<img src="_images/missing.png" alt="gone">',
                        "image did not load: _images/missing.png"),
    "unresolved.html": ('<p>See <span class="xref std std-numref">fig-gone</span>.</p>',
                        "unresolved reference: fig-gone"),
    "warning.html": ("<pre>/opt/env/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: "
                     "IProgress not found</pre>", "warning shown: /opt/env"),
    "traceback.html": ("<pre>Traceback (most recent call last):\n  File x</pre>",
                       "a traceback is shown"),
}


def _page(body: str, *, mathjax: bool = True, up: str = "") -> str:
    head = MATHJAX.format(up=up) if mathjax else ""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}</head>"
            f"<body>{body.replace('{up}', up)}</body></html>")


def write_book(root: Path, seeded: dict | None = None) -> Path:
    """A fixture build: ``index.html`` (good), ``chapters/good.html``, and the seeded pages."""
    (root / "_images").mkdir(parents=True)
    (root / "_images" / "law.png").write_bytes(PNG)
    (root / "_static").mkdir()
    (root / "_static" / "mathjax").symlink_to(assets.mathjax_source(), target_is_directory=True)
    (root / "index.html").write_text(_page(GOOD_BODY))
    (root / "chapters").mkdir()
    (root / "chapters" / "good.html").write_text(_page(GOOD_BODY, up="../"))
    for name, (extra, _) in (seeded or {}).items():
        if extra is None:  # MathJax from a CDN, blocked offline: the equations stay raw
            cdn = '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js">'
            (root / name).write_text(_page(GOOD_BODY, mathjax=False).replace(
                "<head>", f"<head>{cdn}</script>"))
        else:
            (root / name).write_text(_page(GOOD_BODY + extra))
    return root


def run_check(root: Path) -> tuple[int, str]:
    out = io.StringIO()
    failed = check.check_book(root, chromium=CHROMIUM, timeout=30, out=out)
    return failed, out.getvalue()


def page_block(report: str, page: str) -> str:
    m = re.search(rf"^(ok  |FAIL) {re.escape(page)}\b.*?(?=^(?:ok  |FAIL) |^\d+ pages)", report,
                  re.MULTILINE | re.DOTALL)
    assert m, f"{page} missing from the report:\n{report}"
    return m.group(0)


@needs_chromium
def test_good_book_passes(tmp_path):
    failed, report = run_check(write_book(tmp_path / "html"))
    assert failed == 0, report
    assert page_block(report, "chapters/good.html").startswith("ok   chapters/good.html, 2 eq")
    assert "2 pages checked offline in Chromium (4 equations); 0 failed" in report


@needs_chromium
def test_each_seeded_failure_fails_its_page(tmp_path):
    failed, report = run_check(write_book(tmp_path / "html", SEEDED))
    assert failed == len(SEEDED), report
    assert page_block(report, "chapters/good.html").startswith("ok")
    for name, (_, expected) in SEEDED.items():
        block = page_block(report, name)
        assert block.startswith("FAIL"), block
        assert expected in block, block
    # MathJax from a CDN: a blocked request, and the equations left raw
    cdn = page_block(report, "cdn_mathjax.html")
    assert "external request: https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js" in cdn
    assert "raw math in text" in cdn and "equation not typeset" in cdn


@needs_chromium
def test_machine_path_anywhere_in_the_build_fails(tmp_path):
    source = tmp_path / "clone"  # the book's source folder, found from its _config.yml
    (source / "_config.yml").parent.mkdir()
    (source / "_config.yml").write_text("title: fixture\n")
    root = write_book(source / "book" / "_build" / "html")
    (root / "searchindex.js").write_text(f'Search.setIndex({{"p": "{root}/_sources/x.md"}})')
    (root / "chapters" / "good.html").write_text(
        _page(GOOD_BODY + f"<p>results → {source}/results/sc_protein</p>", up="../"))
    failed, report = run_check(root)
    assert failed == 2, report
    assert f"machine path in the page: {source}/" in page_block(report, "chapters/good.html")
    assert "FAIL searchindex.js" in report


def test_rules_without_a_browser():
    clean = {"mathjax": "3.2.2", "math": 2, "untypeset": [], "merrors": [], "images": [],
             "prose": "The law I(x) holds.", "text": "The law I(x) holds.\n$$ in code",
             "unresolved": [], "tracebacks": 0}
    assert check.page_problems(clean, []) == []
    events = [
        {"method": "Network.requestWillBeSent",
         "params": {"request": {"url": "https://fonts.example.org/a.woff2"}}},
        {"method": "Network.requestWillBeSent",
         "params": {"request": {"url": "file:///book/_static/a.js"}}},
    ]
    assert check.page_problems(clean, events) == [
        "external request: https://fonts.example.org/a.woff2"
    ]
    raw = {**clean, "mathjax": None, "prose": r"the law \(I = 1\) raw"}
    problems = check.page_problems(raw, [])
    assert problems[0] == "MathJax did not load (2 equations left raw)"
    assert problems[1].startswith("raw math in text")
    noisy = {**clean, "text": "x\nUserWarning: careful\n", "prose": "Fig. ??? shows"}
    assert check.page_problems(noisy, []) == [
        "unresolved reference: '???' in the text", "warning shown: UserWarning: careful"
    ]


def test_path_leaks_finds_paths_in_every_text_file(tmp_path):
    (tmp_path / "a.html").write_text(f"<pre>{tmp_path}/results/x.csv</pre>")
    (tmp_path / "b.ipynb").write_text('{"text": "/usr/lib/python3/site-packages/y.py"}')
    (tmp_path / "c.html").write_text("<p>results/sc_protein</p>")
    (tmp_path / "d.html").write_text("<pre>/tmp/ipykernel_2981/17.py:19: UserWarning</pre>")
    (tmp_path / "e.ipynb").write_text('{"papermill": {"input_path": "/srv/runs/a.ipynb"}}')
    leaks = check.path_leaks(tmp_path, [f"{tmp_path}/"])
    assert sorted(leaks) == ["a.html", "b.ipynb", "d.html", "e.ipynb"]
    assert leaks["d.html"] == ["/tmp/ipykernel_2981/"]


def test_offline_assets_refuses_a_network_mathjax():
    from types import SimpleNamespace

    from sphinx.errors import ConfigError

    with pytest.raises(ConfigError, match="network address"):
        assets._check_config(None, SimpleNamespace(
            mathjax_path="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"))
    with pytest.raises(ConfigError, match="offline_assets serves MathJax"):
        assets._check_config(None, SimpleNamespace(mathjax_path="elsewhere/mathjax.js"))
    assets._check_config(None, SimpleNamespace(mathjax_path="mathjax/tex-chtml.js"))
    assert (assets.mathjax_source() / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


def test_offline_assets_stops_the_build_without_mathjax(monkeypatch):
    from types import SimpleNamespace

    from sphinx.errors import ExtensionError

    monkeypatch.setitem(sys.modules, "mathjax", None)  # as if not installed
    with pytest.raises(ExtensionError, match="pip install django-static-mathjax"):
        assets._check_config(None, SimpleNamespace(mathjax_path="mathjax/tex-chtml.js"))
