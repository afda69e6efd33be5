"""The lab's live dashboard: one page per host, served by aiohttp on a thread of the supervisor.

The rigs run in their own processes; the server reads their journals (through :class:`~dopa_rl.session.lab.Lab`),
so it never slows a runner.  It listens on loopback unless told otherwise and answers nothing without the
per-session token (``?token=...`` on every URL; the page passes it on):

* ``GET /`` the page (per rig: state, trials, rewards, water against the budget, link health, a lick raster,
  the model's value and RPE per trial as the policy saw them; stop / pause / resume buttons, stop confirmed);
* ``GET /api/state`` ``{"rigs": [{"name", "subject", "state", "trials_done", "rewards", "water_ul",
  "budget_ul", "link": {...}, "last_trials": [...]}, ...]}``;
* ``POST /api/rigs/{name}/stop|pause|resume``.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
import socket
import threading
from importlib import resources
from typing import Any

__all__ = ["ACTIONS", "Dashboard", "check_address"]

ACTIONS = ("stop", "pause", "resume")


def check_address(host: str, port: int) -> list[str]:
    """Problems with ``--host``/``--port`` (empty when the server can listen there)."""
    problems = []
    if not 0 <= port <= 65535:
        problems.append(f"`port` {port}: must be in 0..65535 (0 = a free port)")
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror:
        problems.append(f"`host` {host!r}: not an address of this machine")
    return problems


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Dashboard:
    """``start()`` binds (a free port for ``port=0``) and serves on a daemon thread; ``stop()`` ends it."""

    def __init__(self, lab: Any, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        self.lab, self.host, self.port = lab, host, port
        self.token = token or secrets.token_urlsafe(18)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None
        self._page = resources.files("dopa_rl.session").joinpath("dashboard.html").read_text(encoding="utf-8")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    # ------------------------------------------------------------------ the application
    def _authorised(self, request) -> bool:
        given = request.query.get("token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    def app(self):
        from aiohttp import web

        @web.middleware
        async def token_required(request, handler):
            if not self._authorised(request):
                return web.json_response({"error": "a valid token is required (?token=...)"}, status=403)
            resp = await handler(request)
            resp.headers["Cache-Control"] = "no-store"
            resp.headers["X-Frame-Options"] = "DENY"
            return resp

        async def page(request):
            return web.Response(text=self._page, content_type="text/html")

        async def state(request):
            rigs = await asyncio.get_running_loop().run_in_executor(None, self.lab.snapshot)
            return web.json_response({"rigs": rigs})

        async def action(request):
            name, what = request.match_info["name"], request.match_info["action"]
            if what not in ACTIONS:
                return web.json_response({"error": f"unknown action {what!r}"}, status=404)
            if name not in self.lab.rigs:
                return web.json_response({"error": f"no rig {name!r}"}, status=404)
            ok = getattr(self.lab, what)(name)
            return web.json_response({"rig": name, "action": what, "sent": ok}, status=200 if ok else 409)

        app = web.Application(middlewares=[token_required])
        app.router.add_get("/", page)
        app.router.add_get("/api/state", state)
        app.router.add_post("/api/rigs/{name}/{action}", action)
        return app

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Dashboard:
        from aiohttp import web

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def serve():
            self._runner = web.AppRunner(self.app(), access_log=None)
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()
            ready.set()

        def main():
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="dopa-rl dashboard", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop = self._thread = None

    safe = stop
