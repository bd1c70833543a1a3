"""Serving the API with waitress: in the foreground (``labkit api``) or from a thread.

Without a token the server only binds to a loopback address: the API would otherwise let
anyone on the network read the lab's tables.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass

import waitress
from waitress import wasyncore
from waitress.server import TcpWSGIServer

from labkit.api.app import THREADS, build
from labkit.api.catalogue import CATALOGUE
from labkit.api.parse import MAX_BODY_BYTES
from labkit.api.shedding import TimedDispatcher
from labkit.api.store import Store
from labkit.config import Settings, SettingsError

# Open connections waitress keeps (its default is 100): a classroom's browsers, through
# Grafana or not, open a few each.
CONNECTION_LIMIT = 1000


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_bind(host: str, token: str | None) -> None:
    if not token and not is_loopback(host):
        raise SettingsError(
            f"The API would listen on {host}, beyond this machine, without a token: "
            "set LABKIT_API_TOKEN, or bind it to 127.0.0.1 (LABKIT_API_HOST; LABKIT_BIND_HOST "
            "moves every server)"
        )


def _listen_address(host: str, port: int) -> str:
    """One address to listen on: waitress opens a socket per address a name resolves to."""
    if host == "localhost":
        return "127.0.0.1"
    *_, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return str(address[0])


def _server(settings: Settings, token: str | None, port: int) -> tuple[TcpWSGIServer, Store]:
    _check_bind(settings.api_host, token)
    app, store = build(settings, token)
    # The dispatcher notes how long each request waits for a worker: the app sheds those that
    # waited too long (labkit.api.shedding). waitress takes it through its "_dispatcher".
    dispatcher = TimedDispatcher()
    dispatcher.set_thread_count(THREADS)
    server = waitress.create_server(
        app,
        _dispatcher=dispatcher,
        host=_listen_address(settings.api_host, port),
        port=port,
        threads=THREADS,
        # Open connections are cheap (one poll each); past this many waitress stops accepting
        # and new ones would wait unanswered in the kernel's backlog.
        connection_limit=CONNECTION_LIMIT,
        asyncore_use_poll=True,
        # The app answers oversize bodies with a JSON 413; waitress's own limit is a backstop.
        max_request_body_size=2 * MAX_BODY_BYTES,
        ident="labkit-api",
    )
    return server, store


def _url(server: TcpWSGIServer) -> str:
    host, port = server.effective_host, server.effective_port
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def serve(settings: Settings, token: str | None = None) -> None:
    """Serve the API on ``settings.api_host:settings.api_port`` until interrupted (Ctrl-C)."""
    server, store = _server(settings, token, settings.api_port)
    print(f"labkit API on {_url(server)} ({len(CATALOGUE)} metrics); Ctrl-C stops it.")
    try:
        server.run()  # returns on Ctrl-C
    finally:
        wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown()
        store.pool.close()


@dataclass
class RunningApi:
    """An API served from a background thread (notebooks, tests): ``.url``, ``.stop()``."""

    url: str
    server: TcpWSGIServer
    store: Store
    thread: threading.Thread
    stopping: threading.Event

    def stop(self) -> None:
        """Stop serving and wait for the thread; idempotent."""
        self.stopping.set()
        self.thread.join(10)
        self.server.task_dispatcher.shutdown()
        self.store.pool.close()

    def __enter__(self) -> RunningApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _serve_until(server: TcpWSGIServer, stopping: threading.Event) -> None:
    # waitress's own loop, a poll at a time: only this thread touches the server's sockets
    # (closing them from another thread races with waitress waking its loop).
    while not stopping.is_set():
        wasyncore.loop(timeout=0.2, map=server._map, count=1)
    wasyncore.close_all(server._map)


def start_in_thread(
    settings: Settings, token: str | None = None, port: int | None = None
) -> RunningApi:
    """Serve the API from a daemon thread; ``port=0`` picks a free port (see ``.url``)."""
    server, store = _server(settings, token, settings.api_port if port is None else port)
    stopping = threading.Event()
    thread = threading.Thread(
        target=_serve_until, args=(server, stopping), name="labkit-api", daemon=True
    )
    thread.start()
    return RunningApi(_url(server), server, store, thread, stopping)
