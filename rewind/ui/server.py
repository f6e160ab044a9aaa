"""``rewind ui``: a read-only HTTP server for the viewer's page and its JSON API.

The page (``rewind/ui/static``: HTML, one script, one stylesheet and vendored Chart.js)
is served for every path outside ``/api`` and ``/static``, and routes itself, so that
``/s/<id>/step/12`` is a link a user can paste. The API serves exactly the documents the
CLI prints with ``--json`` (``cli.documents``), so the two never disagree:

    GET /api/sessions?name=&text=&failed=1&since=&limit=   rewind list --json
    GET /api/tree                                          rewind list --tree --json
    GET /api/sessions/<ref>[?after=N]                      rewind inspect REF --json (steps after N)
    GET /api/sessions/<ref>/steps/<n>                      rewind inspect REF --step N --json
    GET /api/sessions/<ref>/conversation                   rewind inspect REF --conversation --json
    GET /api/diff?a=&b=                                    rewind diff A B --json
    GET /api/bisect?good=&bad=                             rewind bisect GOOD BAD --json

An error is ``{"error", "hint"}`` with 404 (nothing by that reference), 400 (a bad
parameter) or 500. Each request reads the store as ``rewind list`` does (the index is
opened briefly, so a recording in progress stays readable and shows up live).

Security (recorded content is untrusted, and a browser is a confused deputy):
- Only GET and HEAD; nothing here writes to the store.
- Every response carries a Content-Security-Policy that allows no inline script, plus
  ``nosniff``, ``no-referrer`` and ``frame-ancestors 'none'``. The page builds its DOM
  with ``textContent`` only.
- The ``Host`` header must name this server (defeats DNS rebinding from a web page).
- Bound to anything but loopback, every request but the page's own code (``/static``)
  needs the random access token: in the URL (``?token=``; the page then gets a
  ``SameSite=Strict`` cookie), the ``X-Rewind-Token`` header, or that cookie.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from rewind.analysis.pricing import override_path
from rewind.cli.app import App
from rewind.cli.documents import (
    bisect_document,
    conversation_document,
    diff_document,
    listed_sessions,
    pick_step,
    session_document,
    sessions_document,
    step_document,
)
from rewind.cli.since import EXAMPLES, parse_since
from rewind.errors import AmbiguousSession, RewindError, SessionNotFound
from rewind.store.models import StepRecord

__all__ = ["CSP", "UiServer", "ViewerConfig", "is_loopback"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
# Fixed, not from the machine's mimetypes tables (which may call .js text/plain, and a
# module script sent so is refused under nosniff).
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "md": "text/plain; charset=utf-8",
}
TOKEN_HEADER = "X-Rewind-Token"
TOKEN_COOKIE = "rewind_token"
STATIC = "static"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ViewerConfig:
    """Where to listen; ``token`` is set (and required) when ``host`` is not loopback."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None

    @classmethod
    def for_host(cls, host: str, port: int) -> ViewerConfig:
        return cls(host, port, None if is_loopback(host) else secrets.token_urlsafe(24))


class _ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.hint = status, hint


Route = Callable[[App, list[str], dict[str, str]], Any]


def _sessions(app: App, _parts: list[str], query: dict[str, str]) -> Any:
    since = _since(query.get("since"))
    limit = _int(query, "limit")
    sessions, summaries = listed_sessions(
        app, limit, query.get("name") or None, since, query.get("failed") == "1"
    )
    text = query.get("text", "").lower()
    if text:
        sessions = [s for s in sessions if text in " ".join([s.id, s.name or "", *s.command]).lower()]
    return sessions_document(sessions, summaries)


def _since(value: str | None) -> float | None:
    if not value:
        return None
    since = parse_since(value, time.time())
    if since is None:
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"since: {value!r} is not a date or an age", EXAMPLES)
    return since


def _tree(app: App, _parts: list[str], _query: dict[str, str]) -> Any:
    return sessions_document(*listed_sessions(app), tree=True)


class DocumentCache:
    """The last few session documents, each kept while its session is unchanged: a
    finished session's document is the same until it is replaced, so reopening a
    10,000-step session does not rebuild 5 MB of JSON. A recording's is never kept."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._docs: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._docs:
                self._docs.move_to_end(key)
                return self._docs[key]
        doc = build()
        with self._lock:
            self._docs[key] = doc
            while len(self._docs) > self.size:
                self._docs.popitem(last=False)
        return doc


def _session(app: App, parts: list[str], query: dict[str, str]) -> Any:
    """``rewind inspect --json``; with ``after=N``, only the steps after N (the rest of the
    document whole), so that a page following a live recording fetches what is new."""
    store = app.store()
    info = store.session(parts[0])
    after = _int(query, "after", minimum=0)

    def build() -> Any:
        return session_document(app, info, store.steps(info.id))

    if info.status == "recording":
        doc = build()
    else:
        doc = _CACHE.get(
            (info.id, info.status, info.ended_at, info.steps, info.lost, _prices_stamp(app)), build
        )
    return doc if after is None else {**doc, "steps": [s for s in doc["steps"] if s["step"] > after]}


def _prices_stamp(app: App) -> tuple[str, float | None] | None:
    """Which price table overrides the bundled one, and when it last changed (costs depend on it)."""
    path = override_path(app.home.root)
    if path is None:
        return None
    try:
        return str(path), path.stat().st_mtime
    except OSError:
        return str(path), None


_CACHE = DocumentCache()


def _steps(app: App, ref: str) -> list[StepRecord]:
    store = app.store()
    return store.steps(store.session(ref).id)


def _step(app: App, parts: list[str], _query: dict[str, str]) -> Any:
    number = _number(parts[2])
    return step_document(app, pick_step(_steps(app, parts[0]), number))


def _conversation(app: App, parts: list[str], _query: dict[str, str]) -> Any:
    steps = _steps(app, parts[0])
    try:
        return conversation_document(app, steps)
    except RewindError as exc:  # no LLM call in it: nothing by that name
        raise _ApiError(HTTPStatus.NOT_FOUND, str(exc)) from exc


def _diff(app: App, _parts: list[str], query: dict[str, str]) -> Any:
    return diff_document(app, _required(query, "a"), _required(query, "b"))


def _bisect(app: App, _parts: list[str], query: dict[str, str]) -> Any:
    return bisect_document(app, _required(query, "good"), _required(query, "bad"))


def route(path: str) -> tuple[Route, list[str]] | None:
    """The API handler for ``path`` (under ``/api/``) and its path arguments."""
    parts = [unquote(p) for p in path.strip("/").split("/")][1:]
    match parts:
        case ["sessions"]:
            return _sessions, []
        case ["tree"]:
            return _tree, []
        case ["diff"]:
            return _diff, []
        case ["bisect"]:
            return _bisect, []
        case ["sessions", ref]:
            return _session, [ref]
        case ["sessions", ref, "conversation"]:
            return _conversation, [ref]
        case ["sessions", ref, "steps", n]:
            return _step, [ref, "steps", n]
    return None


def _int(query: dict[str, str], name: str, minimum: int = 1) -> int | None:
    value = query.get(name)
    if not value:
        return None
    number = _number(value)
    if number < minimum:
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be at least {minimum}")
    return number


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"not a number: {text!r}") from None


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"the {name!r} parameter is required")
    return value


def static_file(name: str) -> tuple[bytes, str] | None:
    """A packaged asset's bytes and content type; ``None`` outside ``static/``."""
    if not name or any(part in ("", ".", "..") or part.startswith(".") for part in name.split("/")):
        return None
    node = resources.files("rewind.ui").joinpath(STATIC, *name.split("/"))
    if not node.is_file():
        return None
    suffix = name.rpartition(".")[2].lower()
    return node.read_bytes(), CONTENT_TYPES.get(suffix, "application/octet-stream")


class _Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"
    server_version = "rewind-ui"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _refuse_method(self) -> None:
        self._send_json(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"error": "rewind ui is read-only"},
            extra=(("Allow", "GET, HEAD"),),
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse_method  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        """Quiet: a viewer's every request on stderr would bury the URL."""

    def _serve(self, head: bool) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not self._host_ok():
            self._send_json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "unexpected Host header"}, head=head)
            return
        if parts.path.startswith("/static/"):  # the page's own code: nothing secret in it
            self._static(parts.path.removeprefix("/static/"), head)
            return
        if not self._token_ok(query):
            self._send_json(HTTPStatus.FORBIDDEN, {
                "error": "this viewer needs its access token",
                "hint": "open the URL `rewind ui` printed, with its ?token=",
            }, head=head)  # fmt: skip
            return
        if parts.path.startswith("/api/"):
            self._api(parts.path, query, head)
        else:
            self._page(query, head)

    def _host_ok(self) -> bool:
        host = self.headers.get("Host", "")
        return host.lower() in self.server.allowed_hosts

    def _token_ok(self, query: dict[str, str]) -> bool:
        expected = self.server.config.token
        if expected is None:
            return True
        offered = [query.get("token"), self.headers.get(TOKEN_HEADER)]
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        if TOKEN_COOKIE in cookie:
            offered.append(cookie[TOKEN_COOKIE].value)
        return any(o is not None and hmac.compare_digest(o.encode(), expected.encode()) for o in offered)

    def _api(self, path: str, query: dict[str, str], head: bool) -> None:
        found = route(path)
        if found is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such API: {path}"}, head=head)
            return
        handler, args = found
        try:
            doc = handler(self.server.app, args, query)
        except _ApiError as exc:
            self._send_json(exc.status, {"error": str(exc), "hint": exc.hint}, head=head)
        except (SessionNotFound, AmbiguousSession) as exc:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": str(exc), "hint": exc.hint}, head=head)
        except RewindError as exc:
            status = HTTPStatus.NOT_FOUND if "no step" in str(exc) else HTTPStatus.INTERNAL_SERVER_ERROR
            self._send_json(status, {"error": str(exc), "hint": exc.hint}, head=head)
        else:
            self._send_json(HTTPStatus.OK, doc, head=head)

    def _static(self, name: str, head: bool) -> None:
        found = static_file(name)
        if found is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "no such file"}, head=head)
            return
        data, kind = found
        self._send(HTTPStatus.OK, data, kind, head, extra=(("Cache-Control", "no-cache"),))

    def _page(self, query: dict[str, str], head: bool) -> None:
        found = static_file("index.html")
        assert found is not None, "rewind/ui/static/index.html is missing from the package"
        extra: tuple[tuple[str, str], ...] = (("Cache-Control", "no-store"),)
        token = self.server.config.token
        if token is not None and query.get("token") == token:
            extra += (("Set-Cookie", f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"),)
        self._send(HTTPStatus.OK, found[0], found[1], head, extra=extra)

    def _send_json(
        self, status: HTTPStatus, doc: Any, head: bool = False, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        self._send(
            status,
            data,
            "application/json; charset=utf-8",
            head,
            extra=(("Cache-Control", "no-store"), *extra),
        )

    def _send(
        self, status: HTTPStatus, data: bytes, kind: str, head: bool, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.send_response(status)
        for name, value in (
            *SECURITY_HEADERS,
            ("Content-Type", kind),
            ("Content-Length", str(len(data))),
            *extra,
        ):
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)


class UiServer(ThreadingHTTPServer):
    """The viewer's server for one store; ``serve_in_thread`` for tests and embedding."""

    daemon_threads = True

    def __init__(self, app: App, config: ViewerConfig) -> None:
        self.app, self.config = app, config
        super().__init__((config.host, config.port), _Handler)
        port = self.server_address[1]
        names = (
            {config.host, "localhost", "127.0.0.1", "[::1]"} if is_loopback(config.host) else {config.host}
        )
        self.allowed_hosts = {f"{name}:{port}".lower() for name in names}
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        token = f"/?token={self.config.token}" if self.config.token else "/"
        return f"http://{host}:{self.port}{token}"

    def serve_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="rewind-ui", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)
