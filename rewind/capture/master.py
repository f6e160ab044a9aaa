"""An embedded mitmproxy master on loopback, with only the addons Rewind needs.

The full ``mitmdump`` addon chain costs about twice the per-request CPU of this one.
The master runs in its own thread and event loop; ``start()`` returns once every
listener accepts connections, with the ports the OS chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewind.capture.lean import import_lean_addons, lighten_mitmproxy, send_without_copies

import_lean_addons()
send_without_copies()

from mitmproxy import options  # noqa: E402
from mitmproxy.addons import next_layer, proxyserver, tlsconfig  # noqa: E402
from mitmproxy.master import Master  # noqa: E402

from rewind.capture.http2 import PreferHttp2, RefuseUnnegotiatedHttp2  # noqa: E402
from rewind.capture.wiring import LOOPBACK, Listener, Wiring  # noqa: E402
from rewind.errors import CaptureError  # noqa: E402

START_TIMEOUT_S = 15.0
PORT_HINT = "another program listens on that port: choose another --port, or 0 for any free one"


@dataclass(frozen=True)
class ProxySpec:
    """What to run: the CA directory, provider listeners and our addons."""

    ca_dir: Path
    listeners: tuple[Listener, ...]
    addons: Sequence[Any]
    listen_port: int = 0


def configure(opts: options.Options, spec: ProxySpec) -> Wiring:
    """Loopback listeners, our CA, and no upstream connection before a request needs one.

    Lazy connection and no upstream-certificate sniffing let hosts that do not resolve
    (routed, or replayed offline) work: eager connection answers CONNECT with 502.
    """
    ports = free_ports(1 + len(spec.listeners))
    wiring = Wiring(
        proxy_port=spec.listen_port or ports[0],
        listener_ports={lst.provider: port for lst, port in zip(spec.listeners, ports[1:], strict=True)},
        listeners=spec.listeners,
    )
    modes = [f"regular@{wiring.proxy_port}"] + [
        f"{lst.mode_spec}@{wiring.listener_ports[lst.provider]}" for lst in spec.listeners
    ]
    opts.update(
        listen_host=LOOPBACK,
        mode=modes,
        confdir=str(spec.ca_dir),
        connection_strategy="lazy",
        upstream_cert=False,
    )
    return wiring


class ProxyThread:
    """Runs the master in a daemon thread; ``start`` waits until it listens."""

    def __init__(self, spec: ProxySpec) -> None:
        self.spec = spec
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._master: Master | None = None
        self._thread = threading.Thread(target=self._run, name="rewind-proxy", daemon=True)
        self.wiring: Wiring | None = None

    def start(self) -> Wiring:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._failure or self.wiring is None:
            reason = str(self._failure or "timed out")
            hint = PORT_HINT if "in use" in reason.lower() else None
            raise CaptureError(f"the recording proxy did not start: {reason}", hint=hint)
        return self.wiring

    def stop(self) -> None:
        if self._loop is not None and self._master is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._master.shutdown)
        self._thread.join(10)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the starting thread
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(_quiet_on_cancel)
        lighten_mitmproxy()  # here, not at import: a user's mitmdump loading our addons is left as it is
        opts = options.Options()
        master = Master(opts)
        server = proxyserver.Proxyserver()
        master.addons.add(
            server, next_layer.NextLayer(), tlsconfig.TlsConfig(), PreferHttp2(),
            RefuseUnnegotiatedHttp2(), *self.spec.addons,
        )
        wiring = configure(opts, self.spec)
        self._master = master
        running = asyncio.create_task(master.run())
        await self._await_listening(server, running, 1 + len(self.spec.listeners))
        self.wiring = wiring
        self._ready.set()
        await running

    async def _await_listening(
        self, server: proxyserver.Proxyserver, running: asyncio.Task[None], wanted: int
    ) -> None:
        while not running.done():
            if len(server.servers) >= wanted and all(s.is_running for s in server.servers):
                return
            failed = [s.last_exception for s in server.servers if s.last_exception]
            if failed:
                raise CaptureError(f"cannot listen: {failed[0]}")
            await asyncio.sleep(0.005)


def _quiet_on_cancel(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Loop errors as asyncio reports them, except a callback cancelled at shutdown: with a
    client connection still open, Python 3.11 logs a ``CancelledError`` traceback from
    ``StreamReaderProtocol.connection_made`` (CPython gh-113538) though nothing is wrong."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the OS says are free now (mitmproxy refuses several @0)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
