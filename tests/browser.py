"""A real headless Chromium (Debian's package), driven over the DevTools protocol.

Just enough of the protocol to open a page, run JavaScript in it or in one of its
frames, and take a screenshot. No browser download: the system's ``chromium``.
``check_report`` walks a Snakemake HTML report as a person would.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        self.profile = tempfile.mkdtemp(prefix="xaiseg-chromium-")
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port = self._port()
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())
        url = next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"]
        self.socket = websocket.create_connection(url, timeout=60)
        self.events: list[dict] = []
        self.next_id = 0
        self.call("Runtime.enable")

    def _port(self) -> str:
        active = Path(self.profile) / "DevToolsActivePort"
        for _ in range(300):
            if active.exists() and active.read_text().strip():
                return active.read_text().split()[0]
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port")

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def js(self, expression: str, context: int | None = None):
        extra = {"contextId": context} if context is not None else {}
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
            **extra,
        )  # fmt: skip
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 30) -> None:
        """Navigate and wait until the JavaScript expression ``ready`` is true."""
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        while not self.js(f"!!({ready})"):
            if time.time() > deadline:
                raise TimeoutError(f"{url}: {ready} never became true")
            time.sleep(0.2)

    def frame_contexts(self) -> list[int]:
        """Execution contexts created so far (frames too, data: ones included)."""
        self.js("1")  # collect pending events
        created = [e for e in self.events if e.get("method") == "Runtime.executionContextCreated"]
        return [e["params"]["context"]["id"] for e in created]

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


# The report's categories every run has; "Few masks" and "Segmenter explained" come
# with the DoLL runs and the segmenter maps.
CATEGORIES = {"Results", "Saliency", "Overlays", "Classifier"}
CLICK_CATEGORY = """(() => { const a = Array.from(document.querySelectorAll('nav a'))
  .find(e => e.textContent.trim() === %s); if (a) a.click(); return !!a })()"""
ROWS = "Array.from(document.querySelectorAll('nav tr')).map(r => r.textContent.trim())"
CLICK_ROW = """(() => { const r = Array.from(document.querySelectorAll('nav tr'))
  .find(e => e.textContent.trim() === %s); r.querySelector('a[iconname=eye]').click() })()"""
HOME = "document.querySelector('nav ol li a').click()"  # the breadcrumb's house icon
# Every image on the page decoded: complete, and wider than nothing.
IMAGES = "Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0, i.alt])"
HEADERS = "Array.from(document.querySelectorAll('th')).map(t => t.textContent.trim())"
FIGURES = "Object.values(categories).flatMap(c => Object.values(c).flat())"


def check_report(report: Path, screenshot: Path) -> dict:
    """Open ``report`` in headless Chromium and check it as a reader would: every
    category opens, every figure shown decodes (no broken image), the summary page
    renders its table with confidence intervals and the saliency-metrics table.
    Returns what was seen; raises AssertionError on the first thing missing."""
    browser = Browser()
    try:
        browser.open(Path(report).resolve().as_uri(), "document.querySelector('nav li')")
        names = set(
            browser.js(
                "Array.from(document.querySelectorAll('nav a')).map(a => a.textContent.trim())"
            )
        )
        assert names >= CATEGORIES, names
        shown = 0
        for category in sorted(names - {""}):
            if not _open_category(browser, category):
                continue
            for row in browser.js(ROWS):
                if row.endswith(".png"):
                    browser.js(CLICK_ROW % json.dumps(row))
                    time.sleep(0.5)
                    images = browser.js(IMAGES)
                    assert images and all(ok for ok, _ in images), (row, images)
                    shown += 1
        expected = browser.js(f"{FIGURES}.filter(f => f.endsWith('.png')).length")
        assert shown == expected, (shown, expected)
        headers = set(_table(browser, "Results", "summary.html"))
        assert {"recipe", "model", "dice", "dice_ci_low", "dice_ci_high"} <= headers, headers
        assert {"pointing_game", "auroc", "dice_otsu", "sanity_passed"} <= headers, headers
        browser.screenshot(screenshot)  # the summary page: what a reader opens first
        assert Path(screenshot).read_bytes()[:4] == b"\x89PNG"
        return {"categories": names, "figures": shown}
    finally:
        browser.close()


def _open_category(browser: Browser, category: str) -> bool:
    browser.js(HOME)
    time.sleep(0.3)
    opened = browser.js(CLICK_CATEGORY % json.dumps(category))
    time.sleep(0.3)
    return bool(opened)


def _table(browser: Browser, category: str, suffix: str) -> list[str]:
    """The column headers of every table of the page a report row shows (in a frame)."""
    assert _open_category(browser, category), category
    row = next((r for r in browser.js(ROWS) if r.endswith(suffix)), None)
    assert row is not None, (category, suffix, browser.js(ROWS))
    browser.js(CLICK_ROW % json.dumps(row))
    time.sleep(1)
    headers = []
    for context in browser.frame_contexts():
        try:
            headers += browser.js(HEADERS, context) or []
        except RuntimeError:  # a frame of a page shown earlier, gone since
            continue
    return headers
