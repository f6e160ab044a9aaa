"""Local model servers: ports, their place in a session's upstreams, the agent's variables."""

from __future__ import annotations

import pytest

from rewind.capture.local import (
    is_loopback,
    local_ports_of,
    local_upstreams,
    parse_local_ports,
    point_at_listeners,
)
from rewind.errors import ConfigError


def test_local_ports_live_in_the_upstreams_and_come_back_out() -> None:
    ups = {"openai": "https://api.openai.com/v1", **local_upstreams([11434, 8000])}
    assert ups["local:11434"] == "http://127.0.0.1:11434"
    assert local_ports_of(ups) == {11434, 8000}


def test_bad_ports_are_refused_and_repeats_are_merged() -> None:
    assert parse_local_ports([8000, 8000, 1234]) == (8000, 1234)
    for bad in (0, 70000, -1):
        with pytest.raises(ConfigError, match="between 1 and 65535"):
            parse_local_ports([bad])


def test_every_loopback_spelling_of_the_port_points_at_its_listener() -> None:
    env = {
        "A": "http://localhost:8000/v1", "B": "127.0.0.1:8000", "C": "https://[::1]:8000",
        "D": "http://0.0.0.0:8000", "E": "LOCALHOST:8000/x",
        "F": "http://localhost:80001", "G": "http://example.com:8000", "H": "/opt/8000/bin",
    }
    out = point_at_listeners(env, {8000: 40001})
    assert out["A"] == "http://127.0.0.1:40001/v1" and out["B"] == "127.0.0.1:40001"
    assert out["C"] == "https://127.0.0.1:40001" and out["D"] == "http://127.0.0.1:40001"
    assert out["E"] == "127.0.0.1:40001/x"
    assert out["F"] == env["F"] and out["G"] == env["G"] and out["H"] == env["H"]  # other ports, hosts


def test_ollama_host_is_set_for_its_port_when_unset_and_kept_otherwise() -> None:
    assert point_at_listeners({}, {11434: 40002})["OLLAMA_HOST"] == "http://127.0.0.1:40002"
    mine = point_at_listeners({"OLLAMA_HOST": "gpu-box:11434"}, {11434: 40002})
    assert mine["OLLAMA_HOST"] == "gpu-box:11434"  # not on this machine: left alone
    assert "OLLAMA_HOST" not in point_at_listeners({}, {8000: 40003})


def test_loopback_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "127.1.2.3", "0.0.0.0"]))
    assert not any(map(is_loopback, ["example.com", "10.0.0.1", "localhost.example.com"]))
