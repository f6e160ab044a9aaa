"""Model servers on loopback (``rewind record --local-port PORT``): Ollama, vLLM,
llama.cpp's server, LM Studio, a LiteLLM proxy on this machine.

Without Rewind's help an agent's loopback calls bypass the proxy (``NO_PROXY``), so they
are never recorded and replay would reach the live local server. For each local port:

- a reverse listener forwards to ``http://127.0.0.1:PORT``; it is kept in the session's
  upstreams as ``local:PORT``, so replay wires the same listeners with no flags;
- loopback leaves ``NO_PROXY``: clients that honour ``HTTP_PROXY`` for loopback
  (Python's httpx, requests and urllib, curl) send their local calls through the proxy;
- variables of the agent's environment naming ``localhost:PORT`` (``OLLAMA_HOST``, a
  ``*_BASE_URL``) point at the listener instead, for clients that never proxy loopback
  (Node's fetch, Go's net/http); ``OLLAMA_HOST`` is set for 11434 when unset.

The ``LoopbackGate`` addon (``capture.gate``), first in the chain, sorts the loopback
calls that reach the regular proxy: a call to one of Rewind's own listeners is treated as
if it had arrived there (recorded once, under that listener); a call to a recorded local
port is recorded; a call to any other local port passes through, unrecorded, as it would
without Rewind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from rewind.errors import ConfigError

LOCAL_PREFIX = "local:"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"})
# Well-known ports, named in the docs; a server whose clients read a variable gets it set.
COMMON_PORTS = {
    11434: "Ollama",
    8000: "vLLM",
    8080: "llama.cpp server",
    1234: "LM Studio",
    4000: "LiteLLM proxy",
}
PORT_VARIABLES = {11434: ("OLLAMA_HOST", "http://127.0.0.1:{port}")}


def local_provider(port: int) -> str:
    """The name of a local port's listener in the session's upstreams."""
    return f"{LOCAL_PREFIX}{port}"


def is_local(provider: str) -> bool:
    return provider.startswith(LOCAL_PREFIX)


def local_upstreams(ports: Iterable[int]) -> dict[str, str]:
    """``local:PORT`` -> ``http://127.0.0.1:PORT`` for each port."""
    return {local_provider(port): f"http://127.0.0.1:{port}" for port in ports}


def local_port(provider: str) -> int:
    """The port a ``local:PORT`` listener name stands for."""
    return int(provider[len(LOCAL_PREFIX):])


def local_ports_of(upstreams: Mapping[str, str]) -> frozenset[int]:
    """The local ports a session's upstreams name."""
    return frozenset(local_port(p) for p in upstreams if is_local(p))


def parse_local_ports(values: Iterable[int]) -> tuple[int, ...]:
    """Distinct ports in 1..65535, or ConfigError."""
    ports = tuple(dict.fromkeys(values))
    bad = [p for p in ports if not 0 < p < 65536]
    if bad:
        raise ConfigError(f"--local-port expects a port between 1 and 65535, got {bad[0]}")
    return ports


def is_loopback(host: str) -> bool:
    return host.lower() in LOOPBACK_HOSTS or host.startswith("127.")


def point_at_listeners(environ: Mapping[str, str], listeners: Mapping[int, int]) -> dict[str, str]:
    """The environment with every mention of ``localhost:PORT`` (any loopback spelling,
    with or without a scheme) replaced by ``127.0.0.1:LISTENER``, and the variables of
    ``PORT_VARIABLES`` set where unset. ``listeners`` maps local port -> listener port."""
    env = dict(environ)
    for port, listener in listeners.items():
        variable = PORT_VARIABLES.get(port)
        if variable is not None and not env.get(variable[0]):
            env[variable[0]] = variable[1].format(port=port)
        mention = _mention(port)
        for name, value in env.items():
            if str(port) in value:
                env[name] = mention.sub(f"127.0.0.1:{listener}", value)
    return env


def _mention(port: int) -> re.Pattern[str]:
    hosts = r"localhost|127\.\d+\.\d+\.\d+|\[::1\]|0\.0\.0\.0"
    return re.compile(rf"(?<![\w.-])(?:{hosts}):{port}(?!\d)", re.IGNORECASE)
