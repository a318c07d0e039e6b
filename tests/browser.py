"""A real headless Chromium (Debian's package), driven over the DevTools protocol.

Just enough of the protocol to open a page, run JavaScript in it or in one of its
frames, and take a screenshot. No browser download: the system's ``chromium``.
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
