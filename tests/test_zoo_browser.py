"""The scaling zoo in a real headless browser, offline: it renders and asks for nothing.

Loads the self-contained zoo page (every published curve) from ``file://`` in Debian's
Chromium with every host name unresolvable, drives it over the Chrome DevTools protocol,
and checks that the Bokeh document is built, its canvases are drawn, a selector filters the
curves, and no request leaves the file.  Skipped, with the reason, when Chromium is absent
(``apt-get install chromium``).  Run as a script to keep the screenshot::

    python tests/test_zoo_browser.py /work/shots/zoo.png
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

RENDER_PROBE = """(() => {
  let canvases = 0, drawn = 0;
  const walk = (root) => root.querySelectorAll('*').forEach((el) => {
    if (el.tagName === 'CANVAS') {
      canvases++;
      if (el.width > 0 && el.height > 0) drawn++;
    }
    if (el.shadowRoot) walk(el.shadowRoot);
  });
  walk(document);
  const docs = window.Bokeh ? window.Bokeh.documents.length : 0;
  const count = docs ? window.Bokeh.documents[0].get_model_by_name('count') : null;
  return JSON.stringify({docs, canvases, drawn, count: count ? count.text : null});
})()"""

SELECT_IMAGES = "window.Bokeh.documents[0].get_model_by_name('modality').value = 'Image'"


def _start_chromium(profile: Path):
    args = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--metrics-recording-only", "--window-size=1400,900",
        # every host name fails to resolve: the page cannot reach a CDN even if it tried
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    for _ in range(300):
        if port_file.exists() and port_file.read_text().strip():
            return proc, int(port_file.read_text().split()[0])
        time.sleep(0.1)
    proc.kill()
    msg = "Chromium did not open its DevTools port within 30 s."
    raise RuntimeError(msg)


async def _drive(port: int, url: str, screenshot: Path | None, timeout: float = 60.0):
    from tornado.websocket import websocket_connect

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as resp:
        target = next(t for t in json.load(resp) if t["type"] == "page")
    conn = await websocket_connect(target["webSocketDebuggerUrl"], max_message_size=2**28)
    ids, requests, events = iter(range(1, 10**6)), [], []

    async def call(method, **params):
        mid = next(ids)
        await conn.write_message(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(await asyncio.wait_for(conn.read_message(), timeout))
            if msg.get("method") == "Network.requestWillBeSent":
                requests.append(msg["params"]["request"]["url"])
            elif "method" in msg:
                events.append(msg["method"])
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def evaluate(expr):
        res = await call("Runtime.evaluate", expression=expr, returnByValue=True)
        return res["result"].get("value")

    for domain in ("Network", "Page", "Runtime"):
        await call(f"{domain}.enable")
    start = time.perf_counter()
    await call("Page.navigate", url=url)
    state = None
    while time.perf_counter() - start < timeout:
        state = json.loads(await evaluate(RENDER_PROBE) or "{}")
        if state.get("docs") and state.get("drawn", 0) >= 2 and state.get("count"):
            break
        await asyncio.sleep(0.05)
    render_s = time.perf_counter() - start
    load_ms = await evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    load_s = (load_ms or float("nan")) / 1000
    await evaluate(SELECT_IMAGES)  # the callback runs asynchronously (BokehJS 3)
    after = {}
    for _ in range(100):
        await asyncio.sleep(0.1)
        after = json.loads(await evaluate(RENDER_PROBE))
        if after.get("count", "").startswith("28 "):
            break
    await evaluate("window.Bokeh.documents[0].get_model_by_name('modality').value = '(all)'")
    await asyncio.sleep(0.5)
    if screenshot is not None:
        shot = await call("Page.captureScreenshot", format="png")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    conn.close()
    return {"state": state, "after_filter": after, "filtered_text": after.get("count"),
            "requests": requests, "load_s": load_s, "render_s": render_s}


def check_zoo_in_browser(html: Path, screenshot: Path | None = None) -> dict:
    """Load ``html`` in headless Chromium offline and return what the page did."""
    # Chromium's helper processes can still write into the scratch profile as it is removed
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc, port = _start_chromium(Path(profile))
        try:
            return asyncio.run(_drive(port, html.resolve().as_uri(), screenshot))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _build_zoo(path: Path) -> Path:
    from helpers import zoo

    return zoo.write_zoo(path, *zoo.zoo_tables())


def _report(html: Path, result: dict) -> str:
    return (f"zoo page {html.stat().st_size / 1e6:.2f} MB; load event "
            f"{result['load_s']:.2f} s, plots drawn {result['render_s']:.2f} s; "
            f"{result['state']}; requests: {len(result['requests'])}")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                    "chromium); the zoo's browser test needs a real headless browser")
def test_zoo_renders_offline_and_requests_nothing(tmp_path):
    html = _build_zoo(tmp_path / "zoo.html")
    result = check_zoo_in_browser(html, tmp_path / "zoo.png")
    print(_report(html, result))
    state = result["state"]
    assert state["docs"] == 1  # the Bokeh document was built from the inlined BokehJS
    assert state["drawn"] >= 2  # both panels drew onto their canvases
    assert state["count"].startswith("191 curves")  # every published curve is loaded
    assert result["filtered_text"].startswith("28 curves")  # the modality selector filters
    outside = [u for u in result["requests"] if not u.startswith(("file://", "data:", "blob:"))]
    assert outside == [], f"the page asked the network for {outside}"
    assert result["requests"][0] == html.resolve().as_uri()
    assert html.stat().st_size < 5e6 and result["render_s"] < 30
    assert (tmp_path / "zoo.png").stat().st_size > 10_000


if __name__ == "__main__":  # pragma: no cover
    if CHROMIUM is None:
        sys.exit("Chromium is not installed (apt-get install chromium).")
    shot = Path(sys.argv[1] if len(sys.argv) > 1 else "zoo.png")
    page = _build_zoo(Path(tempfile.mkdtemp()) / "zoo.html")
    res = check_zoo_in_browser(page, shot)
    print(_report(page, res))
    others = [u for u in res["requests"] if not u.startswith("file://")]
    print("requests outside the file:", [u for u in others if not u.startswith("data:")],
          f"({len(others)} inline data: URIs)")
    print("screenshot:", shot)
