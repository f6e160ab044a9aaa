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


def connect(
    url: str, use_proxy: bool, proxy_url: str | None = None
) -> tuple[http.client.HTTPConnection, str]:
    target = urlsplit(url)
    if use_proxy:
        proxy = urlsplit(proxy_url or os.environ["HTTP_PROXY"])
        return http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=30), url
    return http.client.HTTPConnection(target.hostname, target.port, timeout=30), target.path


def interleaved(url: str, paths: list[str], n: int) -> dict[str, list[float]]:
    """``n`` calls on each path, taking turns; latency per call and path."""
    conns = {}
    for spec in paths:
        name, _, proxy = spec.partition("=")
        via = os.environ["HTTP_PROXY"] if proxy == "env" else proxy or None
        conns[name] = connect(url, via is not None, via)
    out: dict[str, list[float]] = {name: [] for name in conns}
    for i in range(n):
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": f"bench call {i}"}]})
        for name, (conn, path) in conns.items():
            out[name].append(call(conn, path, body.encode())[0])
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
    conn, path = connect(args.url, args.proxy)
    results = []
    for i in range(args.n):
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"bench call {i}{marker}"}]}
        if args.sse:
            body["stream"] = True
        results.append(call(conn, path, json.dumps(body).encode()))
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
