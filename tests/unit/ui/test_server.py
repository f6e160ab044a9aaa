"""The viewer's server: its API serves exactly the CLI's --json documents, it never writes,
and it refuses what a hostile page or network could ask of it."""

from __future__ import annotations

import dataclasses
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rewind.cli.app import App
from rewind.store.home import Home
from rewind.store.ids import new_session_id
from rewind.store.models import SessionStart
from rewind.store.writer import SessionWriter
from rewind.ui.server import CSP, UiServer, ViewerConfig, is_loopback, route
from tests.unit.cli.conftest import Invoke, make_step, write_session


@pytest.fixture
def server(home: Home) -> Iterator[UiServer]:
    running = UiServer(App(home), ViewerConfig(port=0))
    running.serve_in_thread()
    yield running
    running.stop()


def get(server: UiServer, path: str, host: str | None = None, method: str = "GET",
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    conn = http.client.HTTPConnection(server.config.host, server.port, timeout=10)
    conn.putrequest(method, path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{server.port}")
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def doc(server: UiServer, path: str) -> Any:
    status, _headers, body = get(server, path)
    assert status == 200, body
    return json.loads(body)


def cli_json(rewind: Invoke, *args: str) -> Any:
    result = rewind(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_api_serves_the_documents_the_cli_prints(home: Home, rewind: Invoke, server: UiServer) -> None:
    parent = write_session(home, "base")
    child = write_session(home, "fix", mode="branch", parent_id=parent, fork_step=1)
    assert doc(server, "/api/sessions") == cli_json(rewind, "list")
    assert doc(server, "/api/tree") == cli_json(rewind, "list", "--tree")
    assert doc(server, f"/api/sessions/{child}") == cli_json(rewind, "inspect", child)
    assert doc(server, "/api/sessions/fix/steps/1") == cli_json(rewind, "inspect", "fix", "--step", "1")
    assert doc(server, f"/api/diff?a={parent}&b={child}") == cli_json(rewind, "diff", parent, child)
    assert doc(server, f"/api/bisect?good={parent}&bad={child}") == cli_json(rewind, "bisect", parent, child)


def test_sessions_filter_by_text_and_name(home: Home, server: UiServer) -> None:
    write_session(home, "alpha", command=("python", "weather.py"))
    write_session(home, "beta", command=("node", "agent.mjs"))
    assert [s["name"] for s in doc(server, "/api/sessions?text=WEATHER")] == ["alpha"]
    assert [s["name"] for s in doc(server, "/api/sessions?name=beta")] == ["beta"]
    assert doc(server, "/api/sessions?text=nothing-like-it") == []


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/sessions/nope", 404, "no session matches"),
        ("/api/sessions/base/steps/9", 404, "no step 9"),
        ("/api/sessions/base/steps/x", 400, "not a number"),
        ("/api/sessions?since=yesterday-ish", 400, "not a date or an age"),
        ("/api/sessions?limit=0", 400, "limit must be at least 1"),
        ("/api/diff?a=base", 400, "'b' parameter is required"),
        ("/api/nothing", 404, "no such API"),
    ],
)
def test_bad_requests_get_a_json_error(
    home: Home, server: UiServer, path: str, status: int, says: str
) -> None:
    write_session(home, "base")
    got, headers, body = get(server, path)
    assert got == status and says in json.loads(body)["error"]
    assert headers["content-type"].startswith("application/json")


def test_every_response_forbids_inline_script_and_framing(home: Home, server: UiServer) -> None:
    write_session(home, "base")
    for path in ("/api/sessions", "/api/nothing", "/static/nothing.js"):
        _status, headers, _body = get(server, path)
        assert headers["content-security-policy"] == CSP and "script-src 'self'" in CSP
        assert "unsafe-inline" not in CSP and "frame-ancestors 'none'" in CSP
        assert headers["x-content-type-options"] == "nosniff"


def test_it_is_read_only(home: Home, server: UiServer) -> None:
    sid = write_session(home, "base")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _body = get(server, f"/api/sessions/{sid}", method=method)
        assert status == 405 and headers["allow"] == "GET, HEAD"
    assert doc(server, f"/api/sessions/{sid}")["id"] == sid


def test_a_foreign_host_header_is_refused(home: Home, server: UiServer) -> None:
    """A web page that rebinds its own name to 127.0.0.1 must not read the store."""
    write_session(home, "base")
    status, _headers, _body = get(server, "/api/sessions", host=f"attacker.example:{server.port}")
    assert status == 421
    assert get(server, "/api/sessions", host=f"localhost:{server.port}")[0] == 200


def test_static_paths_cannot_leave_the_package(server: UiServer) -> None:
    for path in ("/static/../server.py", "/static/..%2fserver.py", "/static/.hidden", "/static/"):
        status, _headers, body = get(server, path)
        assert status == 404, (path, body)


def test_a_non_loopback_bind_needs_the_token(home: Home) -> None:
    exposed = ViewerConfig.for_host("0.0.0.0", 0)
    assert exposed.token and len(exposed.token) >= 24 and ViewerConfig.for_host("::1", 0).token is None
    # the same rules on loopback (tests never listen elsewhere): a config that has a token
    config = ViewerConfig("127.0.0.1", 0, exposed.token)
    server = UiServer(App(home), config)
    server.serve_in_thread()
    try:
        host = f"127.0.0.1:{server.port}"
        assert _status(server, "/api/sessions", host) == 403
        assert _status(server, "/api/sessions?token=wrong", host) == 403
        assert _status(server, f"/api/sessions?token={config.token}", host) == 200
        assert _status(server, "/api/sessions", host, token=config.token) == 200
        assert server.url.endswith(f"/?token={config.token}")
    finally:
        server.stop()


def _status(server: UiServer, path: str, host: str, token: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host)
    if token:
        conn.putheader("X-Rewind-Token", token)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_loopback_names() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.5", "example.com", "::"))


def test_routes() -> None:
    assert route("/api/sessions/abc/steps/3") is not None
    assert route("/api/sessions/abc/steps") is None and route("/api/other") is None


def test_static_files_have_fixed_types_and_need_no_token(home: Home) -> None:
    server = UiServer(App(home), ViewerConfig("127.0.0.1", 0, "secret-token-for-the-test"))
    server.serve_in_thread()
    try:
        for path, kind in (("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
            status, headers, _body = get(server, path)
            assert status == 200 and headers["content-type"].startswith(kind), path
        assert get(server, "/")[0] == 403  # the page itself, and the API, need the token
    finally:
        server.stop()


def test_a_session_without_an_llm_call_has_no_conversation(home: Home, server: UiServer) -> None:
    start = SessionStart(
        id=new_session_id(), name="tool-only", mode="record", started_at=1.0, command=(), cwd="/"
    )
    writer = SessionWriter(home, start)
    writer.add_step(
        dataclasses.replace(make_step(writer, "https://tools.example/lookup", b"{}"), kind="http")
    )
    writer.finish(0, b"", b"", 2.0)
    sid = start.id
    status, _headers, body = get(server, f"/api/sessions/{sid}/conversation")
    assert status == 404 and "no LLM call" in json.loads(body)["error"]


def test_after_keeps_only_the_newer_steps_and_the_rest_of_the_document(home: Home, server: UiServer) -> None:
    sid = write_session(home, "base")
    whole = doc(server, f"/api/sessions/{sid}")
    assert doc(server, f"/api/sessions/{sid}?after=0") == whole
    newer = doc(server, f"/api/sessions/{sid}?after=1")
    assert newer["steps"] == [] and {k: v for k, v in newer.items() if k != "steps"} == {
        k: v for k, v in whole.items() if k != "steps"
    }
    assert get(server, f"/api/sessions/{sid}?after=-1")[0] == 400
