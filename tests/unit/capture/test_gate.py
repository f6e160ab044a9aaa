"""The loopback gate: Rewind's own listeners, recorded local ports, everything else."""

from __future__ import annotations

from mitmproxy.test import tflow

from rewind.capture.gate import LoopbackGate
from rewind.capture.listeners import ListenerPorts, is_passthrough

UPSTREAMS = {"openai": "https://user:pw@gw.example/v1", "local:11434": "http://127.0.0.1:11434"}


def gate() -> LoopbackGate:
    ports = ListenerPorts()
    ports.bind({"openai": 9001, "local:11434": 9002})
    return LoopbackGate(ports, UPSTREAMS)


def flow_to(url: str) -> tflow.HTTPFlow:
    flow = tflow.tflow()
    flow.client_conn.sockname = ("127.0.0.1", 9000)  # the regular proxy
    flow.request.url = url
    return flow


def test_a_call_for_a_listener_is_as_if_it_arrived_there() -> None:
    g, flow = gate(), flow_to("http://127.0.0.1:9001/v1/chat/completions")
    g.requestheaders(flow)
    assert flow.request.url == "https://gw.example/v1/chat/completions"
    assert flow.request.headers["host"] == "gw.example"  # credentials never in Host
    assert g.ports.provider_of(flow) == "openai" and not is_passthrough(flow)


def test_a_recorded_local_port_is_recorded_and_other_loopback_ports_pass_through() -> None:
    g = gate()
    recorded, other, remote = (flow_to(u) for u in (
        "http://localhost:11434/api/chat", "http://127.0.0.1:5000/x", "http://example.com:5000/x"))
    for flow in (recorded, other, remote):
        g.requestheaders(flow)
    assert not is_passthrough(recorded) and recorded.request.url == "http://localhost:11434/api/chat"
    assert is_passthrough(other) and not is_passthrough(remote)


def test_a_call_that_arrived_on_a_listener_is_left_alone() -> None:
    g, flow = gate(), flow_to("http://127.0.0.1:11434/api/chat")
    flow.client_conn.sockname = ("127.0.0.1", 9002)
    g.requestheaders(flow)
    assert flow.request.url == "http://127.0.0.1:11434/api/chat" and not is_passthrough(flow)
