"""The dashboard over an embedded run: everything in one process, for local work and tests.

    env = pf.EmbeddedEnvironment(order, charge, events=True)
    dashboard = EmbeddedDashboard(env, port=8765).start()   # then open dashboard.url

A background thread drives the embedded loop; it and every dashboard request share one
lock, since the embedded runtime is single-threaded.
"""

from __future__ import annotations

import threading

from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.errors import DefinitionError
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.visibility.feed import follow
from pulsarflow.visibility.memory import InMemoryVisibilityStore
from pulsarflow.visibility.service import VisibilityService

from .server import DashboardServer

MAX_BATCH = 1_000


class EmbeddedDashboard:
    def __init__(self, env: EmbeddedEnvironment, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, read_token: bool | None = None) -> None:
        if not isinstance(env.events, InMemoryEventStore):
            raise DefinitionError("the embedded dashboard reads the in-memory event store: build the environment "
                                  "with events=True")
        self.env = env
        self.store = InMemoryVisibilityStore()
        follow(env.events, self.store)
        self.lock = threading.Lock()
        self.service = VisibilityService(self.store, env.client(), lock=self.lock)
        self.server = DashboardServer(self.service, host, port, token=token, read_token=read_token)
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._drive, name="pulsarflow-embedded-loop", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def login_url(self) -> str:
        """The URL to open in a browser (it carries the token)."""
        return self.server.login_url

    @property
    def token(self) -> str:
        return self.server.token

    def start(self) -> EmbeddedDashboard:
        self.server.start()
        self._pump.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pump.join(timeout=5)
        self.server.stop()

    def _drive(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                for _ in range(MAX_BATCH):
                    if not self.env.step():
                        break
            self._stop.wait(0.02)
