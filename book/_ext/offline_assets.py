"""Sphinx extension: the book carries its own MathJax, so it renders offline.

MathJax 3 comes from the ``django-static-mathjax`` wheel on PyPI (a verbatim copy of the
``mathjax`` npm package; importable as ``mathjax``, no Django needed).  Its browser build is
copied to ``_static/mathjax/`` of every HTML build, and ``mathjax_path`` (set in
``_config.yml``) must point into it.  There is no fallback: a ``mathjax_path`` that is a URL, or
a missing package, stops the build with an error instead of quietly loading MathJax from a
network at reading time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError, ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: where the MathJax files land inside the built HTML's ``_static`` folder
STATIC_SUBDIR = "mathjax"
#: the MathJax combined component the book loads (TeX in, CommonHTML out)
COMPONENT = "tex-chtml.js"
#: parts of the browser build that ``tex-chtml.js`` loads on demand (fonts, TeX extensions,
#: the accessibility menu); the other combined bundles and the SVG output are not needed
NEEDED = (COMPONENT, "a11y", "adaptors", "input", "output/chtml", "sre", "ui")


def mathjax_source() -> Path:
    """The MathJax 3 browser build (``es5/``) of the installed ``django-static-mathjax``."""
    try:
        import mathjax  # the django-static-mathjax distribution
    except ImportError as exc:
        msg = (
            "offline_assets: MathJax is not installed; the book serves its own copy and never "
            "loads it from a network. Install it with `pip install django-static-mathjax` "
            "(it is in the `book` extra of pyproject.toml)."
        )
        raise ExtensionError(msg) from exc
    es5 = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (es5 / COMPONENT).is_file():
        msg = f"offline_assets: the installed MathJax package has no es5/{COMPONENT}"
        raise ExtensionError(msg)
    return es5


def _check_config(app: Sphinx, config: Config) -> None:
    path = config.mathjax_path or ""
    expected = f"{STATIC_SUBDIR}/{COMPONENT}"
    if "://" in path or path.startswith("//"):
        msg = (
            f"mathjax_path is a network address ({path!r}); the book must carry its own MathJax: "
            f"set `mathjax_path: {expected}` in _config.yml"
        )
        raise ConfigError(msg)
    if path != expected:
        msg = f"mathjax_path is {path!r}; offline_assets serves MathJax at {expected!r}"
        raise ConfigError(msg)
    mathjax_source()  # fail now, not after an hour of executing notebooks


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src = mathjax_source()
    dest = Path(app.outdir) / "_static" / STATIC_SUBDIR
    for part in NEEDED:
        s, d = src / part, dest / part
        if not s.exists():
            msg = f"offline_assets: the installed MathJax package has no es5/{part}"
            raise ExtensionError(msg)
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)
    logger.info("offline_assets: MathJax copied to %s", dest.relative_to(app.outdir))


def _thebe_enabled(app: Sphinx) -> bool:
    launch = (app.config.html_theme_options or {}).get("launch_buttons") or {}
    return bool(launch.get("thebe"))


def _is_thebe(script) -> bool:
    body = getattr(script, "attributes", {}).get("body") or ""
    filename = getattr(script, "filename", None) or str(script)
    return "THEBE_JS_URL" in body or filename.endswith("sphinx-thebe.js")


def _page_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Drop sphinx-thebe's scripts when the book has no live-code button, and repeated inline
    scripts in any case.

    Jupyter Book always loads sphinx-thebe; under Sphinx 7 its inline configuration is written
    twice into every page (``const THEBE_JS_URL`` declared twice: a JavaScript error) and names a
    script on a network.  The book's launch buttons are off, so the page needs neither.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    keep, seen = [], set()
    drop_thebe = not _thebe_enabled(app)
    for js in scripts:
        body = getattr(js, "attributes", {}).get("body")
        if drop_thebe and _is_thebe(js):
            continue
        if body is not None:
            if body in seen:
                continue
            seen.add(body)
        keep.append(js)
    context["script_files"] = keep


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _check_config)
    app.connect("html-page-context", _page_scripts)
    app.connect("build-finished", _copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
