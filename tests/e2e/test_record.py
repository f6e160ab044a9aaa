"""Recording through the real CLI and proxy: steps, streams, secrets, failures, processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rewind.store.home import Home
from rewind.store.index import Store
from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import (
    DEMO_AGENT,
    PYTHON,
    SECRET,
    STREAMING_AGENT,
    Rewind,
    all_stored_bytes,
    curl_via,
    mitmdump,
    stream_timing,
    wait_for,
)

pytestmark = pytest.mark.e2e

STEP_FIELDS = {
    "step",
    "kind",
    "provider",
    "model",
    "method",
    "url",
    "status",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "ttft_ms",
    "streamed",
}


def test_demo_agent_is_recorded_step_by_step(rw: Rewind, routes: list[str]) -> None:
    result = rw.record("--name", "demo", *routes, "--", *DEMO_AGENT)
    assert result.returncode == 0, result.stderr
    assert "Answer: According to the tool" in result.stdout  # the agent's output, tee'd
    assert "(3 steps, 52 tokens)" in result.stderr
    [session] = rw.json("list")
    assert (session["name"], session["steps"], session["exit_code"]) == ("demo", 3, 0)
    assert session["command"][1:] == ["-m", "rewind.testing.demo_agent"]
    inspected = rw.json("inspect", "demo")
    assert len(inspected["git_commit"]) == 40  # run inside this repository
    assert inspected["stdout"] == result.stdout and inspected["ended_at"] >= inspected["started_at"]
    steps = inspected["steps"]
    assert all(STEP_FIELDS <= set(s) for s in steps)
    assert [(s["step"], s["kind"], s["provider"], s["method"], s["streamed"]) for s in steps] == [
        (1, "llm", "openai", "POST", False),
        (2, "http", None, "GET", False),
        (3, "llm", "openai", "POST", True),
    ]
    assert steps[0]["url"] == "https://api.openai.com/v1/chat/completions"  # logical host kept
    assert steps[1]["url"] == "http://weather.example/tools/weather?city=Paris"
    assert steps[2]["model"] == "gpt-4o-mini" and steps[2]["output_tokens"] == 10


def test_inspect_one_step_shows_redacted_request_and_response(rw: Rewind, routes: list[str]) -> None:
    rw.record("--name", "demo", *routes, "--", *DEMO_AGENT)
    step = rw.json("inspect", "demo", "--step", "1")
    headers = dict((k.lower(), v) for k, v in step["request"]["headers"])
    assert headers["authorization"] == "[REDACTED]"
    assert step["request"]["body"]["tools"][0]["function"]["name"] == "get_weather"
    assert step["response"]["body"]["choices"][0]["message"]["tool_calls"]
    missing = rw("inspect", "demo", "--step", "9")
    assert missing.returncode == 1 and "no step 9" in missing.stderr


AGENT_WITH_SECRETS = textwrap.dedent(
    """
    import json, os, urllib.request
    key = os.environ["OPENAI_API_KEY"]
    base = os.environ["OPENAI_BASE_URL"]
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "mail jane@example.com " + key}]}
    req = urllib.request.Request(base + "/chat/completions?key=" + key, json.dumps(body).encode(),
        {"Authorization": "Bearer " + key, "x-api-key": key, "Cookie": "session=" + key,
         "Content-Type": "application/json"})
    print(json.load(urllib.request.urlopen(req))["choices"][0]["message"]["content"])
    print("my key is", key)
    """
)


def test_no_secret_byte_reaches_disk(rw: Rewind, fake: FakeProvider) -> None:
    result = rw.record(
        "--redact",
        r"[a-z]+@example\.com",
        "--",
        PYTHON,
        "-c",
        AGENT_WITH_SECRETS,
        OPENAI_BASE_URL=f"{fake.url}/v1",
    )
    assert result.returncode == 0, result.stderr
    assert fake.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # passed upstream intact
    stored = all_stored_bytes(rw.home)
    assert SECRET.encode() not in stored
    assert b"jane@example.com" not in stored
    assert b"[REDACTED]" in stored
    assert SECRET not in result.stderr


def test_stream_reaches_client_chunk_by_chunk_and_times_are_kept(rw: Rewind, fake: FakeProvider) -> None:
    result = rw.record(
        "--name", "sse", "--", PYTHON, "-c", STREAMING_AGENT, "80", OPENAI_BASE_URL=f"{fake.url}/v1"
    )
    seen = stream_timing(result.stderr)
    assert seen["n"] >= 4
    assert seen["last"] - seen["first"] > 0.8 * 80e-3 * (seen["n"] - 2)  # not buffered
    assert seen["first"] < seen["last"] / 2
    [step] = Store(Home(rw.home)).steps(rw.json("inspect", "sse")["id"])
    assert step.streamed and step.chunks is not None and len(step.chunks) >= 4
    times = [t for t, _ in step.chunks]
    assert times == sorted(times) and times[-1] - times[0] > 0.8 * 80 * (len(times) - 2)
    assert step.input_tokens and step.output_tokens  # usage from the include_usage chunk


def test_unreachable_upstream_gives_502_and_a_failed_step(rw: Rewind) -> None:
    result = rw.record(
        "--route",
        "api.openai.com=http://127.0.0.1:9",
        "--",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "https://api.openai.com/v1/models",
    )
    assert result.stdout == "502"
    [step] = rw.json("inspect", result.stderr.split("Session recorded: ")[1][:12])["steps"]
    assert step["status"] is None and "connect" in (step["error"] or "").lower()


def test_unresolvable_host_works_when_routed(rw: Rewind, fake: FakeProvider) -> None:
    result = rw.record(
        "--route",
        f"no-such-host.invalid={fake.url}",
        "--",
        "curl",
        "-sf",
        "https://no-such-host.invalid/tools/weather?city=Oslo",
    )
    assert result.returncode == 0 and '"city": "Oslo"' in result.stdout, result.stderr


def test_exit_code_is_passed_through(rw: Rewind) -> None:
    assert rw.record("--", "sh", "-c", "echo hi; exit 7").returncode == 7


def test_command_not_found_makes_no_session(rw: Rewind) -> None:
    result = rw("record", "--", "no-such-command-xyz")
    assert result.returncode == 127 and "command not found" in result.stderr
    assert rw.json("list") == []


def test_client_rejecting_our_ca_gets_a_hint(rw: Rewind, fake: FakeProvider) -> None:
    import certifi

    result = rw.record(
        "--route",
        f"api.openai.com={fake.url}",
        "--",
        "curl",
        "-s",
        "--cacert",
        certifi.where(),
        "https://api.openai.com/v1/models",
    )
    assert result.returncode != 0
    assert "refused Rewind's certificate for api.openai.com" in result.stderr
    assert "bundle.pem" in result.stderr


SLOW_AGENT = textwrap.dedent(
    """
    import os, sys, time, urllib.request
    for i in range(3):
        urllib.request.urlopen("http://weather.example/tools/weather?city=c%d" % i).read()
        print("step", i, flush=True)
    time.sleep(float(sys.argv[1]))
    """
)


def test_list_works_during_a_recording_and_two_record_at_once(rw: Rewind, fake: FakeProvider) -> None:
    route = f"weather.example={fake.url}"
    first = rw.popen("record", "--name", "a", "--route", route, "--", PYTHON, "-c", SLOW_AGENT, "8")
    second = rw.popen("record", "--name", "b", "--route", route, "--", PYTHON, "-c", SLOW_AGENT, "1")
    live: list[bool] = []  # whether a session was still recording in the listing that saw both

    def both_live() -> bool:
        listed = {s["name"]: s for s in rw.json("list")}
        seen = all(n in listed and listed[n]["steps"] == 3 for n in "ab")
        live.extend([any(s["status"] == "recording" for s in listed.values())] if seen else [])
        return seen

    wait_for(both_live)
    assert live == [True]  # "a" sleeps 8 s after its last step: a loaded machine lists in time
    assert first.wait(60) == 0 and second.wait(60) == 0
    listed = {s["name"]: s for s in rw.json("list")}
    assert listed["a"]["status"] == listed["b"]["status"] == "complete"


def test_kill_9_keeps_every_completed_step(rw: Rewind, fake: FakeProvider) -> None:
    proc = rw.popen(
        "record",
        "--name",
        "killed",
        "--route",
        f"weather.example={fake.url}",
        "--",
        PYTHON,
        "-c",
        SLOW_AGENT,
        "60",
        start_new_session=True,
    )
    wait_for(lambda: any(s["steps"] == 3 for s in rw.json("list")))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    session = rw.json("inspect", "killed")
    assert [s["step"] for s in session["steps"]] == [1, 2, 3]
    assert session["status"] == "interrupted"
    assert rw("list").returncode == 0


def test_ctrl_c_reaches_the_agent_and_the_session_is_saved(rw: Rewind, fake: FakeProvider) -> None:
    agent = SLOW_AGENT.replace(
        "time.sleep(float(sys.argv[1]))",
        textwrap.dedent(
            """
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("agent saw ctrl-c", flush=True)
            sys.exit(130)
        """
        ),
    )
    proc = rw.popen(
        "record",
        "--name",
        "ctrlc",
        "--route",
        f"weather.example={fake.url}",
        "--",
        PYTHON,
        "-c",
        agent,
        start_new_session=True,
    )
    wait_for(lambda: any(s["steps"] == 3 for s in rw.json("list")))
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "agent saw ctrl-c" in out
    assert "Session recorded:" in err
    session = rw.json("inspect", "ctrlc")
    assert session["exit_code"] == 130 and len(session["steps"]) == 3


def test_sigint_to_rewind_alone_is_passed_on_to_the_agent(rw: Rewind, fake: FakeProvider) -> None:
    agent = SLOW_AGENT.replace(
        "time.sleep(float(sys.argv[1]))",
        "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('agent saw ctrl-c', flush=True)\n"
        "    sys.exit(130)",
    )
    proc = rw.popen(
        "record", "--name", "int", "--route", f"weather.example={fake.url}", "--", PYTHON, "-c", agent
    )
    wait_for(lambda: any(s["steps"] == 3 for s in rw.json("list")))
    proc.send_signal(signal.SIGINT)  # to rewind only, as a CI runner cancelling a job might
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "agent saw ctrl-c" in out, err
    assert rw.json("inspect", "int")["exit_code"] == 130


def test_init_is_idempotent(rw: Rewind) -> None:
    first = rw("init")
    assert first.returncode == 0 and "Created CA" in first.stderr
    again = rw("init")
    assert again.returncode == 0 and "Kept existing CA" in again.stderr
    assert (rw.home / "ca" / "bundle.pem").is_file()


def test_corrupt_index_is_a_clear_error(rw: Rewind) -> None:
    rw.home.mkdir(parents=True)
    (rw.home / "index.duckdb").write_bytes(b"this is not a database" * 100)
    result = rw("list")
    assert result.returncode == 1 and "index.duckdb" in result.stderr
    assert "Traceback" not in result.stderr


def test_proxy_and_env_for_manual_use(rw: Rewind, fake: FakeProvider) -> None:
    proc = rw.popen("proxy", "--name", "manual", "--route", f"weather.example={fake.url}")
    wait_for(lambda: rw("env").returncode == 0)
    exports = dict(line.removeprefix("export ").split("=", 1) for line in rw("env").stdout.splitlines())
    proxy = exports["HTTP_PROXY"].strip("'")
    got = subprocess.run(
        ["curl", "-s", "-x", proxy, "http://weather.example/tools/weather?city=Rome"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert '"city": "Rome"' in got.stdout
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "Session recorded:" in err and "(1 steps" in err
    assert rw.json("inspect", "manual")["steps"][0]["url"].endswith("city=Rome")


def test_mitmdump_loads_the_recorder(rw: Rewind, fake: FakeProvider, tmp_path: Path) -> None:
    route = f"rewind_route=weather.example={fake.url}"
    proc, port = mitmdump(rw, "record.py", tmp_path / "mitm", "rewind_name=dump", route)
    url = "http://weather.example/tools/weather?city=Lima"
    try:
        wait_for(lambda: '"city": "Lima"' in curl_via(port, url).stdout)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "Session recorded:" in err, err
    steps = rw.json("inspect", "dump")["steps"]
    assert steps and steps[0]["url"] == url


def test_mitmdump_recorder_routes_https_to_a_host_that_does_not_resolve(
    rw: Rewind, fake: FakeProvider, tmp_path: Path
) -> None:
    # Without a lazy connection strategy, mitmdump connects on CONNECT and answers 502.
    route = f"rewind_route=nowhere.invalid={fake.url}"
    proc, port = mitmdump(rw, "record.py", tmp_path / "mitm", "rewind_name=https", route)
    url = "https://nowhere.invalid/tools/weather?city=Oslo"
    try:
        wait_for(lambda: '"city": "Oslo"' in curl_via(port, url, "-k").stdout)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "Session recorded:" in err, err
    assert rw.json("inspect", "https")["steps"][0]["url"] == url


def test_python_is_the_one_running_tests() -> None:
    assert sys.executable.startswith(str(Path(__file__).resolve().parents[2]))


def test_base_url_user_info_reaches_the_upstream_as_basic_auth_and_never_the_store(rw: Rewind) -> None:
    import base64
    import http.server
    import threading

    seen: list[str | None] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Authorization"))
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    password = "gw-" + "pa55w0rd-" + "x7q"  # built at run time
    agent = textwrap.dedent("""
        import os, urllib.request
        base = os.environ["OPENAI_BASE_URL"]
        for headers in ({}, {"Authorization": "Bearer agent-own"}):
            req = urllib.request.Request(base + "/chat/completions", b"{}", headers)
            print(urllib.request.urlopen(req).read().decode())
    """)
    try:
        base = f"http://gw-user:{password}@127.0.0.1:{server.server_address[1]}/v1"
        result = rw.record("--", PYTHON, "-c", agent, OPENAI_BASE_URL=base)
    finally:
        server.shutdown()
    assert result.returncode == 0 and result.stdout.count('"ok": true') == 2, result.stderr
    basic = "Basic " + base64.b64encode(f"gw-user:{password}".encode()).decode()
    assert seen == [basic, "Bearer agent-own"]  # the agent's own header wins
    stored = all_stored_bytes(rw.home)
    assert password.encode() not in stored and basic.split()[1].encode() not in stored


def test_mitmdump_recorder_gives_http2_to_a_client_that_offers_it(
    rw: Rewind, fake: FakeProvider, tmp_path: Path
) -> None:
    route = f"rewind_route=nowhere.invalid={fake.url}"
    proc, port = mitmdump(rw, "record.py", tmp_path / "mitm", "rewind_name=h2", route)
    url = "https://nowhere.invalid/tools/weather?city=Oslo"
    try:
        wait_for(lambda: '"city": "Oslo"' in curl_via(port, url, "-k", "--http2").stdout)
        chosen = alpn_through(port, ["http/1.1", "h2"])  # httpx's order with http2=True
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert chosen == "h2" and "Session recorded:" in err, err
    steps = rw.json("inspect", "h2")["steps"]
    assert steps and all(s["url"] == url and s["status"] == 200 for s in steps)


def alpn_through(port: int, offers: list[str]) -> str | None:
    """CONNECT through the proxy on ``port``, then TLS offering ``offers``: the protocol chosen."""
    import socket
    import ssl

    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.sendall(b"CONNECT nowhere.invalid:443 HTTP/1.1\r\nHost: nowhere.invalid:443\r\n\r\n")
    assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_alpn_protocols(offers)
    with context.wrap_socket(raw, server_hostname="nowhere.invalid") as tls:
        return tls.selected_alpn_protocol()
