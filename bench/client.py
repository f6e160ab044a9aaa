"""Benchmark client: N keep-alive calls to a chat-completions URL, JSON or SSE.

Uses ``HTTP_PROXY`` when ``--proxy`` is given (ignoring NO_PROXY, since the benchmark's
upstream is on loopback) and prints one JSON line of per-call timings.

``--path NAME=PROXY`` (repeatable) interleaves paths instead: one keep-alive connection
per path (``PROXY`` empty: direct; ``env``: ``HTTP_PROXY``), taking turns call by call,
so every path sees the same moments of a noisy machine. It prints
``{"paths": {NAME: [latency_ms, ...]}}``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import time
from urllib.parse import urlsplit


def connect(url: str, proxy_url: str | None) -> tuple[http.client.HTTPConnection, str]:
    """A connection to ``url``'s server, or to the proxy at ``proxy_url``, and the request
    target to send on it."""
    target = urlsplit(url)
    if proxy_url is not None:
        proxy = urlsplit(proxy_url)
        return http.client.HTTPConnection(proxy.netloc, timeout=30), url
    return http.client.HTTPConnection(target.netloc, timeout=30), target.path


def request_body(i: int, marker: str = "", stream: bool = False) -> bytes:
    """The ``i``-th chat-completions call of a run."""
    message = {"role": "user", "content": f"bench call {i}{marker}"}
    body: dict[str, object] = {"model": "gpt-4o", "messages": [message]}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def interleaved(url: str, paths: list[str], n: int) -> dict[str, list[float]]:
    """``n`` calls on each path, taking turns; latency per call and path."""
    conns = {}
    for spec in paths:
        name, _, proxy = spec.partition("=")
        conns[name] = connect(url, os.environ["HTTP_PROXY"] if proxy == "env" else proxy or None)
    out: dict[str, list[float]] = {name: [] for name in conns}
    for i in range(n):
        body = request_body(i)
        for name, (conn, path) in conns.items():
            out[name].append(call(conn, path, body)[0])
    return out


def call(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[float, float, float]:
    """(latency, time to first chunk, time of last chunk) in ms for one call."""
    headers = {"content-type": "application/json", "authorization": "Bearer bench-key"}
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    first = last = None
    while response.read1(65536):
        now = (time.perf_counter() - start) * 1000
        first = first if first is not None else now
        last = now
    response.read()  # completes the response so the connection is reused
    total = (time.perf_counter() - start) * 1000
    return total, first or total, last or total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--sse", action="store_true")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--proxy", action="store_true")
    parser.add_argument("--path", action="append", default=[])
    args = parser.parse_args()
    if args.path:
        print(json.dumps({"paths": interleaved(args.url, args.path, args.n)}))
        return
    marker = f" [[delay:{args.delay_ms}]]" if args.delay_ms else ""
    conn, path = connect(args.url, os.environ["HTTP_PROXY"] if args.proxy else None)
    results = [call(conn, path, request_body(i, marker, args.sse)) for i in range(args.n)]
    print(
        json.dumps(
            {
                "latency": [r[0] for r in results],
                "ttft": [r[1] for r in results],
                "last": [r[2] for r in results],
            }
        )
    )


if __name__ == "__main__":
    main()
