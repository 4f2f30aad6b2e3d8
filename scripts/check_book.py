#!/usr/bin/env python3
"""Open every page of the built book in headless Chromium, offline, and check what a reader sees.

Run it after the build (see README.md)::

    python scripts/check_book.py                      # book/_build/html
    python scripts/check_book.py path/to/html --screenshot notebooks/theory.html shot.png
    python scripts/check_book.py --linkcheck          # the book's external links (needs network)

Every page is opened from disk (``file://``, as a reader opens ``index.html``) in Debian's
``chromium``, driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``; no
extra Python package), with every ``http(s)``/``ws(s)`` request blocked and host names
unresolvable.  A page fails when it

- requests anything outside the book (a script, font or stylesheet from a network),
- references a local file that does not exist, or throws a JavaScript error,
- has an ``<img>`` that did not load,
- has an equation MathJax did not typeset (raw ``\\(``, ``\\[``, ``$$`` or ``\\begin{`` left in
  its text outside code, a ``.math`` element without MathJax output, or a MathJax error),
- has an unresolved cross-reference (``{numref}``/``{ref}`` rendered as plain text, ``???``),
- shows a traceback or a ``…Warning:`` line,
- or contains the build machine's paths (the repository, the Python environment, the home folder
  or any ``site-packages``) — checked over every text file of the build, not only the pages.

It prints one line per page and a summary, and exits 1 when any page fails (2 when Chromium is
missing: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_HTML = REPO / "book" / "_build" / "html"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")
BLOCKED_PATTERNS = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]
#: text files of a build that are searched for machine paths (MathJax's own files are skipped)
TEXT_SUFFIXES = {".html", ".js", ".json", ".txt", ".md", ".ipynb", ".csv", ".css", ".xml", ".inv"}

# Runs in the page after its load event: waits for MathJax and the images, then reports.
_PAGE_REPORT = r"""
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const deadline = Date.now() + %(timeout_ms)d;
  const mathNodes = () => Array.from(document.querySelectorAll('.math'));
  const started = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
  for (const img of document.images) { img.loading = 'eager'; }
  let mathjax = null;
  if (mathNodes().length) {
    while (!started() && Date.now() < deadline) await sleep(50);
    if (started()) {
      await Promise.race([MathJax.startup.promise, sleep(Math.max(deadline - Date.now(), 0))]);
      mathjax = MathJax.version || 'loaded';
    }
  }
  await Promise.race([
    Promise.all(Array.from(document.images).map((i) => i.complete ? null :
      new Promise((r) => { i.addEventListener('load', r); i.addEventListener('error', r); }))),
    sleep(Math.max(deadline - Date.now(), 0)),
  ]);
  const texts = (skip) => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
      acceptNode: (n) => n.parentElement && n.parentElement.closest(skip)
        ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
    });
    while (walker.nextNode()) out.push(walker.currentNode.nodeValue);
    return out.join('');
  };
  const short = (s) => s.replace(/\s+/g, ' ').trim().slice(0, 120);
  return {
    mathjax,
    math: mathNodes().length,
    untypeset: mathNodes().filter((m) => !m.querySelector('mjx-container'))
      .map((m) => short(m.textContent)),
    merrors: Array.from(document.querySelectorAll('mjx-merror')).map((m) => short(m.textContent)),
    prose: texts('script, style, noscript, template, textarea, pre, code, kbd, samp, '
      + '.highlight, mjx-container'),
    text: texts('script, style, noscript, template, mjx-container'),
    images: Array.from(document.images).filter((i) => !(i.complete && i.naturalWidth > 0))
      .map((i) => i.getAttribute('src')),
    unresolved: Array.from(document.querySelectorAll('.xref')).filter((x) => !x.closest('a'))
      .map((x) => short(x.textContent)),
    tracebacks: document.querySelectorAll('.output.traceback, .output.error').length,
  };
})()
"""

#: paths of a build machine whatever its folders: an installed package, a kernel's cell file,
#: papermill's record of where it ran
_MACHINE_PATTERNS = (
    r"[\w.-]*/site-packages/", r"[\w./-]*/ipykernel_\d+/", r'"(?:input|output)_path": "/[^"]*"',
)
_REDIRECT = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)"', re.IGNORECASE)
_RAW_MATH = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{")
_WARNING_LINE = re.compile(r"^.*\b\w*Warning:.*$", re.MULTILINE)


class CheckError(RuntimeError):
    """The browser could not be started or stopped answering."""


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: ``explicit``, ``$CHROMIUM``, or the first on ``PATH``."""
    for name in (explicit, os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        if name and (found := shutil.which(name)):
            return found
    return None


class Browser:
    """Headless Chromium driven through the DevTools protocol over ``--remote-debugging-pipe``."""

    def __init__(self, executable: str, *, timeout: float = 60.0, width: int = 1280,
                 height: int = 1000):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="check-book-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def _child_fds():  # Chromium reads commands on fd 3 and answers on fd 4
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            executable, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
            "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}", "about:blank",
        ]
        self._proc = subprocess.Popen(  # noqa: S603
            args, preexec_fn=_child_fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self._events: list[dict] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for method in ("Page.enable", "Network.enable", "Runtime.enable", "Log.enable"):
            self.send(method, session=self.session)
        self.send("Network.setBlockedURLs", urls=BLOCKED_PATTERNS, session=self.session)
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False, session=self.session)

    # -- protocol -------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise CheckError(f"Chromium exited (code {self._proc.poll()})")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, *, session: str | None = None, **params) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CheckError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_for(self, method: str) -> None:
        """Wait until the event ``method`` has arrived (it may have arrived already)."""
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == method for e in self._events):
            msg = self._read_message(deadline)
            if "method" in msg:
                self._events.append(msg)

    # -- pages ----------------------------------------------------------------------------
    def open(self, url: str) -> tuple[dict, list[dict]]:
        """Load ``url``, let MathJax and the images finish; the page's report and its events."""
        self._events = []
        self.send("Page.navigate", url=url, session=self.session)
        self.wait_for("Page.loadEventFired")
        expr = _PAGE_REPORT % {"timeout_ms": int(self.timeout * 1000 * 0.8)}
        res = self.send("Runtime.evaluate", expression=expr, awaitPromise=True,
                        returnByValue=True, session=self.session)
        if "exceptionDetails" in res:
            raise CheckError(f"page report failed on {url}: {res['exceptionDetails']}")
        events, self._events = self._events, []
        return res["result"]["value"], events

    def screenshot(self, url: str, out: Path, *, selector: str = "div.math, .math") -> Path:
        """Open ``url``, scroll the first ``selector`` element near the top, save a PNG."""
        self.open(url)
        js = (f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
              " if (e) { e.scrollIntoView({block: 'start'}); window.scrollBy(0, -240); } })()")
        self.send("Runtime.evaluate", expression=js, session=self.session)
        time.sleep(0.3)
        data = self.send("Page.captureScreenshot", format="png", session=self.session)["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (CheckError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class PageResult:
    page: str
    problems: list[str] = field(default_factory=list)
    math: int = 0


def page_problems(report: dict, events: list[dict]) -> list[str]:
    """The problems of one page, from its in-page report and its DevTools events."""
    problems = []
    external, missing, urls = set(), set(), {}
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Network.requestWillBeSent":
            url = urls[p.get("requestId")] = p["request"]["url"]
            if not url.startswith(LOCAL_SCHEMES):
                external.add(url)
        elif e["method"] == "Network.loadingFailed" and not p.get("canceled"):
            url = urls.get(p.get("requestId"), "")
            if not url.startswith(LOCAL_SCHEMES):
                continue  # the blocked external request, reported as such
            if url.startswith("data:"):
                continue  # an inline resource (e.g. a library's icon), not a file of the book
            missing.add(f"{url} ({p.get('errorText', 'failed')})")
        elif e["method"] == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "")
            problems.append(f"JavaScript error: {text.splitlines()[0][:160]}")
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            entry = p["entry"]
            url = entry.get("url", "")
            if url and not url.startswith(LOCAL_SCHEMES):
                continue  # the blocked external request, reported once below
            if entry.get("source") == "network" or "ERR_FILE_NOT_FOUND" in entry["text"]:
                continue  # a failed load, reported from the network events
            problems.append(f"console error: {entry['text'][:160]}")
    problems += [f"external request: {u}" for u in sorted(external)]
    problems += [f"missing local file: {u}" for u in sorted(missing)]
    problems += [f"image did not load: {src}" for src in report["images"]]
    if report["math"] and not report["mathjax"]:
        problems.append(f"MathJax did not load ({report['math']} equations left raw)")
    problems += [f"equation not typeset: {m}" for m in report["untypeset"][:5]]
    problems += [f"MathJax error: {m}" for m in report["merrors"][:5]]
    for m in _RAW_MATH.finditer(report["prose"]):
        start = max(m.start() - 40, 0)
        problems.append(f"raw math in text: …{report['prose'][start:m.end() + 40]!r}")
        break
    problems += [f"unresolved reference: {r}" for r in report["unresolved"][:10]]
    if "???" in report["prose"]:
        problems.append("unresolved reference: '???' in the text")
    if report["tracebacks"] or "Traceback (most recent call last)" in report["text"]:
        problems.append("a traceback is shown")
    problems += [f"warning shown: {w.strip()[:160]}" for w in
                 _WARNING_LINE.findall(report["text"])[:5]]
    return problems


def machine_paths(html_dir: Path, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Absolute paths of this machine that must not appear in the built book."""
    html_dir = html_dir.resolve()
    sources = [p for p in html_dir.parents if (p / "_config.yml").is_file()][:1]
    candidates = [REPO, html_dir, *sources, Path(sys.prefix), Path(sys.base_prefix),
                  Path.home(), Path.cwd(), *map(Path, extra)]
    out = set()
    for p in candidates:
        s = str(p).rstrip("/")
        if s and s != "/" and s.count("/") >= 1 and len(s) > 4:
            out.add(s + "/")
            out.add(s.replace("/", "\\/") + "\\/")  # as written inside JSON
    return sorted(out)


def path_leaks(html_dir: Path, forbidden: list[str]) -> dict[str, list[str]]:
    """Files of the build (relative names) that contain a forbidden path or ``site-packages``."""
    leaks: dict[str, list[str]] = {}
    pattern = re.compile("|".join([*map(re.escape, forbidden), *_MACHINE_PATTERNS]))
    for f in sorted(html_dir.rglob("*")):
        rel = f.relative_to(html_dir).as_posix()
        if not f.is_file() or f.suffix not in TEXT_SUFFIXES or rel.startswith("_static/mathjax/"):
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        found = sorted({m.group(0) for m in pattern.finditer(text)})
        if found:
            leaks[rel] = found
    return leaks


def book_pages(html_dir: Path) -> list[Path]:
    """Every HTML page of the build, without the theme's and Sphinx's own folders."""
    return sorted(
        p for p in html_dir.rglob("*.html")
        if not any(part.startswith("_") for part in p.relative_to(html_dir).parts[:-1])
    )


def check_book(html_dir: Path, *, chromium: str, forbid: tuple[str, ...] = (),
               timeout: float = 60.0, screenshot: tuple[str, Path] | None = None,
               out=sys.stdout) -> int:
    """Check every page of ``html_dir``; print a line per page; return the number of failures."""
    html_dir = html_dir.resolve()
    pages = book_pages(html_dir)
    if not pages:
        print(f"no HTML pages under {html_dir}: build the book first", file=out)
        return 1
    leaks = path_leaks(html_dir, machine_paths(html_dir, forbid))
    results = []
    with Browser(chromium, timeout=timeout) as browser:
        for page in pages:
            rel = page.relative_to(html_dir).as_posix()
            source = page.read_text(encoding="utf-8", errors="replace")
            redirect = _REDIRECT.search(source)
            if redirect and len(source) < 1000:  # index.html: a redirect to the first page
                target = (page.parent / redirect.group(1)).resolve()
                r = PageResult(rel, [] if target.is_file() else
                               [f"redirects to a missing page: {redirect.group(1)}"])
            else:
                report, events = browser.open(page.as_uri())
                r = PageResult(rel, page_problems(report, events), report["math"])
            r.problems += [f"machine path in the page: {p}" for p in leaks.pop(rel, [])]
            results.append(r)
            status = "ok  " if not r.problems else "FAIL"
            math = f", {r.math} equations" if r.math else ""
            print(f"{status} {rel}{math}", file=out)
            for p in r.problems:
                print(f"       {p}", file=out)
        if screenshot:
            page, png = screenshot
            shot = browser.screenshot((html_dir / page).as_uri(), Path(png))
            print(f"screenshot of {page} → {shot}", file=out)
    for rel, found in leaks.items():  # search index, sources, tables copied into the build
        print(f"FAIL {rel}\n       machine path in the file: {', '.join(found)}", file=out)
    failed = sum(bool(r.problems) for r in results) + len(leaks)
    n_math = sum(r.math for r in results)
    print(f"{len(results)} pages checked offline in Chromium ({n_math} equations); "
          f"{failed} failed", file=out)
    return failed


def linkcheck(source: Path, out=sys.stdout) -> int:
    """Sphinx ``linkcheck`` over the book's external links; skipped (0) without a network."""
    try:
        socket.create_connection(("doi.org", 443), timeout=5).close()
    except OSError as exc:
        print(f"linkcheck skipped: no network (doi.org:443: {exc}); the book's external links "
              "were not checked — run `python scripts/check_book.py --linkcheck` online",
              file=out)
        return 0
    from jupyter_book.sphinx import build_sphinx

    with tempfile.TemporaryDirectory(prefix="linkcheck-") as tmp:
        result = build_sphinx(
            source, Path(tmp) / "linkcheck", noconfig=True,
            path_config=str(source / "_config.yml"), builder="linkcheck",
            quiet=True, really_quiet=True,
            confoverrides={"external_toc_path": str(source / "_toc.yml"),
                           "latex_individualpages": False,
                           "nb_execution_mode": "off"},
        )
        report = Path(tmp) / "linkcheck" / "output.json"
        rows = [json.loads(line) for line in report.read_text().splitlines()] if (
            report.exists()) else []
    broken = [r for r in rows if r.get("status") == "broken"]
    for r in broken:
        print(f"broken link in {r['filename']}:{r['lineno']}: {r['uri']} ({r['info']})", file=out)
    print(f"linkcheck: {len(rows)} external links, {len(broken)} broken", file=out)
    return int(bool(broken) or bool(result))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", nargs="?", type=Path, default=DEFAULT_HTML,
                    help="the built HTML folder (default: book/_build/html)")
    ap.add_argument("--chromium", help="Chromium executable (default: $CHROMIUM or on PATH)")
    ap.add_argument("--forbid", action="append", default=[], metavar="PATH",
                    help="another absolute path that must not appear in the build")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per page")
    ap.add_argument("--screenshot", nargs=2, metavar=("PAGE", "PNG"),
                    help="also save a screenshot of PAGE (relative to the HTML folder)")
    ap.add_argument("--linkcheck", action="store_true",
                    help="check the book's external links with Sphinx linkcheck instead")
    args = ap.parse_args(argv)
    if args.linkcheck:
        return linkcheck(REPO)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("Chromium not found: `apt-get install chromium` (or set $CHROMIUM)",
              file=sys.stderr)
        return 2
    shot = (args.screenshot[0], Path(args.screenshot[1])) if args.screenshot else None
    failed = check_book(args.html, chromium=chromium, forbid=tuple(args.forbid),
                        timeout=args.timeout, screenshot=shot)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
