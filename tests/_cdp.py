"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol on a pipe (no port, no download).

``--remote-debugging-pipe``: the browser reads commands from fd 3 and writes replies and events to fd 4, each
message JSON followed by a NUL byte.  Enough of the protocol for the dashboard test: open a page, evaluate
JavaScript (awaiting promises), take a screenshot.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    def __init__(self, user_data_dir: Path, width: int = 1340, height: int = 900) -> None:
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium is not installed (.ci/install-system-packages installs it)")
        cmd_r, self._cmd_w = os.pipe()      # we write commands; the browser reads fd 3
        self._res_r, res_w = os.pipe()      # the browser writes fd 4; we read

        def fds():
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={user_data_dir}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=fds, pass_fds=(3, 4))
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None
        self.size = (width, height)

    # ------------------------------------------------------------------ protocol
    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._res_r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: bool = True, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    # ------------------------------------------------------------------ what the test uses
    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", session=False, url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", session=False, targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1],
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str):
        """The value of ``expression`` (a promise is awaited); a JavaScript exception raises."""
        res = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise RuntimeError(d.get("exception", {}).get("description") or d.get("text"))
        return res["result"].get("value")

    def wait_for(self, condition: str, timeout_s: float = 60.0):
        """Resolve when the JavaScript ``condition`` is truthy (checked by the page on each animation frame and
        timer tick), returning its value; reject after ``timeout_s`` of the browser's clock."""
        return self.evaluate(f"""new Promise((resolve, reject) => {{
            const t0 = performance.now();
            const check = () => {{
                let v; try {{ v = ({condition}); }} catch (e) {{ v = false; }}
                if (v) return resolve(v);
                if (performance.now() - t0 > {timeout_s * 1000}) return reject(new Error("timed out: {condition.replace('"', "'")}"));
                setTimeout(check, 50);
            }};
            check();
        }})""")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass
