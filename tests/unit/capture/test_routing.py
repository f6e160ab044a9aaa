"""--route rewrites where a request goes, never what it was."""

from __future__ import annotations

import base64

from mitmproxy.test import tflow

from rewind.capture.routing import PLAYBACK_META, Router, apply_route


def test_route_keeps_path_and_query_and_adds_target_prefix() -> None:
    flow = tflow.tflow()
    flow.request.url = "https://api.openai.com/v1/chat/completions?x=1"
    assert apply_route(flow.request, {"api.openai.com": "http://127.0.0.1:8000/gw"})
    assert flow.request.url == "http://127.0.0.1:8000/gw/v1/chat/completions?x=1"
    assert flow.request.headers["host"] == "127.0.0.1:8000"


def test_host_port_route_wins_and_unrouted_hosts_stay() -> None:
    flow = tflow.tflow()
    flow.request.url = "http://svc.local:8080/a"
    routes = {"svc.local": "http://127.0.0.1:1", "svc.local:8080": "http://127.0.0.1:2"}
    assert apply_route(flow.request, routes) and flow.request.port == 2
    other = tflow.tflow()
    other.request.url = "http://elsewhere/a"
    assert not apply_route(other.request, routes) and other.request.host == "elsewhere"


def test_router_leaves_answered_and_playback_requests_alone() -> None:
    router = Router({"api.openai.com": "http://127.0.0.1:1"})
    answered = tflow.tflow(resp=True)
    answered.request.url = "https://api.openai.com/x"
    router.request(answered)
    assert answered.request.host == "api.openai.com"
    playback = tflow.tflow()
    playback.request.url = "https://api.openai.com/x"
    playback.metadata[PLAYBACK_META] = True
    router.request(playback)
    assert playback.request.host == "api.openai.com"


def test_route_user_info_becomes_basic_auth_never_the_host_header() -> None:
    flow = tflow.tflow()
    flow.request.url = "https://api.openai.com/v1/models"
    flow.request.headers.pop("authorization", None)
    assert apply_route(flow.request, {"api.openai.com": "http://bob:s%40cret@127.0.0.1:8000"})
    assert flow.request.headers["host"] == "127.0.0.1:8000"
    assert flow.request.headers["authorization"] == "Basic " + base64.b64encode(b"bob:s@cret").decode()


def test_route_user_info_does_not_replace_the_agents_own_authorization() -> None:
    flow = tflow.tflow()
    flow.request.url = "https://api.openai.com/v1/models"
    flow.request.headers["authorization"] = "Bearer agent"
    assert apply_route(flow.request, {"api.openai.com": "http://tok-only@127.0.0.1:8000"})
    assert flow.request.headers["authorization"] == "Bearer agent"
    assert "@" not in flow.request.headers["host"]


def test_upstream_user_info_is_sent_for_its_listener_only_and_never_over_the_agents_own() -> None:
    from rewind.capture.listeners import ListenerPorts

    ports = ListenerPorts()
    ports.bind({"openai": 7001, "anthropic": 7002})
    router = Router({}, ports, {"openai": "Basic b3BlbmFpOnB3"})
    flows = []
    for port, own in ((7001, None), (7002, None), (7001, "Bearer agent")):
        flow = tflow.tflow()
        flow.client_conn.sockname = ("127.0.0.1", port)
        flow.request.headers.pop("authorization", None)
        if own:
            flow.request.headers["authorization"] = own
        router.request(flow)
        flows.append(flow.request.headers.get("authorization"))
    assert flows == ["Basic b3BlbmFpOnB3", None, "Bearer agent"]
