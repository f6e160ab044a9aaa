"""Wiring an agent to the proxy: upstreams, listener URLs, environment, routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewind.capture.wiring import (
    BaseUrls,
    Listener,
    Wiring,
    agent_env,
    listeners_for,
    parse_routes,
    runs_javascript,
    upstreams_from_env,
)
from rewind.errors import ConfigError


def test_upstreams_default_to_public_endpoints_and_honour_user_values() -> None:
    ups = upstreams_from_env({"ANTHROPIC_BASE_URL": "http://gateway.local:8080/anthropic"})
    assert ups["openai"] == "https://api.openai.com/v1"
    assert ups["anthropic"] == "http://gateway.local:8080/anthropic"
    assert ups["gemini"] == "https://generativelanguage.googleapis.com"


def test_listener_keeps_path_on_the_client_side() -> None:
    listener = Listener("openai", "https://api.openai.com/v1")
    assert listener.mode_spec == "reverse:https://api.openai.com"
    assert listener.client_base_url(4242) == "http://127.0.0.1:4242/v1"


def test_agent_env_points_everything_at_the_proxy(tmp_path: Path) -> None:
    listeners = tuple(listeners_for(upstreams_from_env({})))
    wiring = Wiring(9000, {"openai": 9001, "anthropic": 9002, "gemini": 9003}, listeners)
    env = agent_env({"PATH": "/bin", "OPENAI_BASE_URL": "x"}, wiring, tmp_path / "b.pem",
                    policy=BaseUrls.ALWAYS)
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://127.0.0.1:9000"
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9001/v1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9002"
    assert env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:9003"
    assert env["NODE_EXTRA_CA_CERTS"] == env["SSL_CERT_FILE"] == str(tmp_path / "b.pem")
    assert "127.0.0.1" in env["NO_PROXY"] and env["PATH"] == "/bin"


def _wired() -> Wiring:
    listeners = tuple(listeners_for(upstreams_from_env({})))
    return Wiring(9000, {"openai": 9001, "anthropic": 9002, "gemini": 9003}, listeners)


def test_auto_sets_only_the_base_urls_the_user_set(tmp_path: Path) -> None:
    env = agent_env({"OPENAI_BASE_URL": "https://gw.example/v1"}, _wired(), tmp_path / "b.pem",
                    ("python", "agent.py"))
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9001/v1"
    assert "ANTHROPIC_BASE_URL" not in env and "GOOGLE_GEMINI_BASE_URL" not in env
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:9000"  # the rest goes through the proxy


@pytest.mark.parametrize(
    "command", [("node", "agent.mjs"), ("/usr/bin/npx", "tsx", "a.ts"), ("bun", "run", "x")]
)
def test_auto_sets_every_base_url_for_javascript(tmp_path: Path, command: tuple[str, ...]) -> None:
    env = agent_env({}, _wired(), tmp_path / "b.pem", command)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9002" and "OPENAI_BASE_URL" in env


def test_a_script_whose_shebang_names_node_runs_javascript(tmp_path: Path) -> None:
    script = tmp_path / "agent"
    script.write_text("#!/usr/bin/env node\nconsole.log(1)\n")
    assert runs_javascript((str(script),)) and not runs_javascript(("python", str(script)))
    assert not runs_javascript((str(tmp_path / "missing"),)) and not runs_javascript(())


def test_never_sets_no_base_url(tmp_path: Path) -> None:
    env = agent_env({"OPENAI_BASE_URL": "https://gw.example/v1"}, _wired(), tmp_path / "b.pem",
                    ("node", "a.js"), BaseUrls.NEVER)
    assert env["OPENAI_BASE_URL"] == "https://gw.example/v1"  # the user's, untouched


def test_routes_parse_and_reject_garbage() -> None:
    assert parse_routes(["API.OpenAI.com=http://127.0.0.1:1"]) == {"api.openai.com": "http://127.0.0.1:1"}
    for bad in ["nohost", "=http://x", "a.com=ftp://x", "a.com=not a url", "a/b=http://x"]:
        with pytest.raises(ConfigError, match="route"):
            parse_routes([bad])


def test_bad_upstream_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="openai upstream"):
        listeners_for({"openai": "api.openai.com"})


def test_listener_mode_spec_never_carries_user_info() -> None:
    listener = Listener("openai", "https://user:pa55word@gateway.local:8443/v1")
    assert listener.mode_spec == "reverse:https://gateway.local:8443"
    assert listener.authorization == "Basic dXNlcjpwYTU1d29yZA=="
    assert Listener("openai", "https://gateway.local/v1").authorization is None


def test_local_listeners_take_loopback_out_of_no_proxy_and_repoint_variables(tmp_path: Path) -> None:
    listeners = tuple(listeners_for({**upstreams_from_env({}), "local:8000": "http://127.0.0.1:8000"}))
    wiring = Wiring(9000, {"openai": 9001, "anthropic": 9002, "gemini": 9003, "local:8000": 9004}, listeners)
    env = agent_env({"MY_LLM": "http://localhost:8000/v1"}, wiring, tmp_path / "b.pem")
    assert env["NO_PROXY"] == env["no_proxy"] == ""
    assert env["MY_LLM"] == "http://127.0.0.1:9004/v1"
    assert wiring.local_listeners() == {8000: 9004} and "local:8000" not in str(wiring.base_urls())
