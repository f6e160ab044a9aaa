"""Rewind's recorder and replayer as addons for plain ``mitmdump -s``.

The composition root for mitmdump, as ``rewind.cli.run`` is for the CLI: options are
declared in ``load`` with the ``rewind_`` prefix and validated in ``configure``;
the hooks hand flows to the same capture and replay code the CLI uses.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import server_hooks

from rewind.canon.redactor import Redactor
from rewind.capture.http2 import PreferHttp2, RefuseUnnegotiatedHttp2
from rewind.capture.recorder import Recorder
from rewind.capture.routing import Router
from rewind.capture.sink import BackgroundSink
from rewind.capture.wiring import parse_routes
from rewind.cli.run import RecordRequest, Tally, keep, load_policy, load_redactor, session_start
from rewind.core.exchange import Exchange, Headers
from rewind.errors import RewindError
from rewind.replay.addon import ReplayAddon
from rewind.replay.engine import ReplayEngine
from rewind.replay.modes import parse_on_miss
from rewind.replay.pace import parse_pace
from rewind.replay.playback import PlaybackThread
from rewind.store.home import Home, resolve_home
from rewind.store.index import Store
from rewind.store.writer import SessionWriter


def _home() -> Home:
    return resolve_home(ctx.options.rewind_home or None, os.environ)


def _options_error(exc: RewindError) -> exceptions.OptionsError:
    return exceptions.OptionsError(f"rewind: {exc}")


class MitmdumpRecorder:
    """Records everything mitmdump sees into one session, saved when mitmdump exits."""

    def __init__(self) -> None:
        self.router = Router({})
        self.recorder = Recorder(self._submit, on_request=self._learn)
        # As in `rewind record`: h2 for clients that offer it, unnegotiated h2c refused
        # before the recorder sees it (script addons run after mitmdump's TlsConfig).
        self.addons = [RefuseUnnegotiatedHttp2(), PreferHttp2(), self.recorder, self.router]
        self.tally = Tally()
        self._sink: BackgroundSink | None = None
        self._redactor: Redactor | None = None
        self._writer: SessionWriter | None = None

    def load(self, loader: Loader) -> None:
        loader.add_option("rewind_home", str, "", "Rewind store (default $REWIND_HOME or ~/.rewind).")
        loader.add_option("rewind_name", str, "", "Name of the recorded session.")
        loader.add_option("rewind_route", Sequence[str], [], "HOST=URL routes (repeatable).")
        loader.add_option("rewind_redact", Sequence[str], [], "Body redaction regexes.")

    def configure(self, updated: set[str]) -> None:
        try:
            if "rewind_route" in updated:
                self.router.routes = parse_routes(list(ctx.options.rewind_route))
            if "rewind_redact" in updated or "rewind_home" in updated:
                load_policy(_home(), ctx.options.rewind_redact, os.environ)
        except RewindError as exc:
            raise _options_error(exc) from exc

    def running(self) -> None:
        offline_friendly()
        home = _home()
        req = RecordRequest(
            command=tuple(sys.argv),
            cwd=os.getcwd(),
            environ=dict(os.environ),
            upstreams={},
            name=ctx.options.rewind_name or None,
            routes=self.router.routes,
            mode="mitmdump",
        )
        redactor = self._redactor = load_redactor(home, ctx.options.rewind_redact, os.environ)
        start = session_start(req, redactor)
        writer = self._writer = SessionWriter(home, start)
        self._sink = BackgroundSink(lambda ex: keep(ex, writer, redactor, self.tally))
        print(f"rewind: recording session {start.id}", file=sys.stderr, flush=True)

    def _learn(self, url: str, headers: Headers) -> None:
        """A request's secrets, known before its response is stored."""
        if self._redactor is not None:
            self._redactor.learn_request(url, headers)

    def _submit(self, exchange: Exchange) -> Future[bool] | None:
        """The sink's future, which the recorder awaits before the response completes."""
        return None if self._sink is None else self._sink.submit(exchange)

    def done(self) -> None:
        if self._sink is None or self._writer is None:
            return
        self.recorder.done()  # WebSockets still open, before the sink closes
        self._sink.close()
        self._writer.finish(0, b"", b"", time.time())
        t = self.tally
        print(
            f"Session recorded: {self._writer.session_id} ({t.steps} steps, {t.tokens} tokens)",
            file=sys.stderr,
            flush=True,
        )


def offline_friendly() -> None:
    """Connect upstream only when a request needs it, and never to sniff a certificate:
    a routed (or replayed) host then need not resolve, as with `rewind record`."""
    ctx.options.update(connection_strategy="lazy", upstream_cert=False)


class MitmdumpReplay:
    """Answers every request from a recorded session (``--set rewind_session=REF``)."""

    def __init__(self) -> None:
        self.inner: ReplayAddon | None = None
        self.playback: PlaybackThread | None = None
        self.addons = [RefuseUnnegotiatedHttp2(), PreferHttp2()]  # as in `rewind replay`

    def load(self, loader: Loader) -> None:
        loader.add_option("rewind_home", str, "", "Rewind store (default $REWIND_HOME or ~/.rewind).")
        loader.add_option("rewind_session", str, "", "Session to replay: id, prefix or name.")
        loader.add_option("rewind_pace", str, "fast", "fast | original | FACTOR (e.g. 2x).")
        loader.add_option("rewind_on_miss", str, "error", "error | live.")
        loader.add_option("rewind_reuse", bool, False, "Serve the last answer again when used up.")

    def running(self) -> None:
        offline_friendly()

    def configure(self, updated: set[str]) -> None:
        if not ctx.options.rewind_session:
            raise exceptions.OptionsError("rewind: set the session to replay: --set rewind_session=REF")
        try:
            self._build()
        except RewindError as exc:
            raise _options_error(exc) from exc

    def _build(self) -> None:
        home = _home()
        _, steps, blobs = Store(home).load(ctx.options.rewind_session)
        engine = ReplayEngine(steps, blobs, load_redactor(home, (), os.environ), ctx.options.rewind_reuse)
        if self.playback is not None:
            self.playback.stop()
        self.playback = PlaybackThread(parse_pace(ctx.options.rewind_pace))
        self.playback.start()
        self.inner = ReplayAddon(engine, self.playback, parse_on_miss(ctx.options.rewind_on_miss))

    def request(self, flow: http.HTTPFlow) -> None:
        if self.inner is not None:
            self.inner.request(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if self.inner is not None:
            self.inner.responseheaders(flow)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if self.inner is not None:
            self.inner.server_connect(data)

    def done(self) -> None:
        if self.inner is None or self.playback is None:
            return
        served, unused = self.inner.engine.matcher.served, self.inner.engine.matcher.unused()
        print(
            f"Replayed {served} steps; {len(self.inner.engine.misses)} misses; {len(unused)} unused",
            file=sys.stderr,
            flush=True,
        )
        self.playback.stop()


__all__ = ["MitmdumpRecorder", "MitmdumpReplay"]
