"""Benchmark agent: a 50-step conversation whose context grows on every call.

Each step adds a user message of non-repetitive text (words drawn from a large random
vocabulary, seeded, so the run is deterministic) and resends the whole conversation to
``$OPENAI_BASE_URL/chat/completions``, then appends the assistant's answer, as agents do.
Prints the number of calls and the bytes sent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import urllib.request

WORDS_PER_MESSAGE = 220


def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(size)]


def message(rng: random.Random, words: list[str], count: int = WORDS_PER_MESSAGE) -> str:
    return " ".join(rng.choice(words) for _ in range(count))


def call(url: str, messages: list[dict[str, str]]) -> str:
    body = json.dumps({"model": "gpt-4o", "messages": messages}).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer bench"}
    with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as response:
        answer: str = json.loads(response.read())["choices"][0]["message"]["content"]
    return answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--words", type=int, default=WORDS_PER_MESSAGE, help="words per message")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    words = vocabulary(rng)
    url = os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions"
    messages: list[dict[str, str]] = [{"role": "system", "content": message(rng, words, args.words)}]
    sent = 0
    for _ in range(args.steps):
        messages.append({"role": "user", "content": message(rng, words, args.words)})
        sent += len(json.dumps(messages))
        messages.append({"role": "assistant", "content": call(url, messages)})
    print(json.dumps({"calls": args.steps, "bytes_sent": sent}))


if __name__ == "__main__":
    main()
