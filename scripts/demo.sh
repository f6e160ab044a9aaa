#!/usr/bin/env bash
# `make demo`: no API key, no network. Records the bundled example agent against the
# bundled fake provider, shows the recorded session, then stops the fake and replays
# the session offline, injects faults at its first step (offline too), and shares it.
#
# REWIND_HOME defaults to ./.demo-home so the demo never touches ~/.rewind.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
QUESTION="What's the weather in Paris?"
export REWIND_HOME="${REWIND_HOME:-$PWD/.demo-home}"
export OPENAI_API_KEY=sk-demo-not-a-real-key

FAKE_PID=""
FAKE_OUT="$(mktemp)"

stop_fake() {
    if [ -n "$FAKE_PID" ]; then
        kill "$FAKE_PID" 2>/dev/null || true
        wait "$FAKE_PID" 2>/dev/null || true
        FAKE_PID=""
    fi
}
trap 'stop_fake; rm -f "$FAKE_OUT"' EXIT
trap 'exit 130' INT TERM

# The fake provider prints its URL on its first stdout line.
"$BIN/python" -m rewind.testing.fake_provider --chunk-delay-ms 40 >"$FAKE_OUT" &
FAKE_PID=$!
URL=""
for _ in $(seq 200); do
    URL="$(head -n 1 "$FAKE_OUT")"
    [ -n "$URL" ] && break
    kill -0 "$FAKE_PID" 2>/dev/null || break
    sleep 0.05
done
if [ -z "$URL" ]; then
    echo "demo: the fake provider did not start" >&2
    exit 1
fi

echo "==> Fake provider at $URL (REWIND_HOME=$REWIND_HOME)"
echo "==> Recording the example agent: rewind record --name demo"
"$BIN/rewind" record --name demo \
    --route "api.openai.com=$URL" --route "weather.example=$URL" \
    -- "$BIN/python" -m rewind.testing.demo_agent "$QUESTION"

echo
echo "==> The recorded session: rewind inspect demo"
"$BIN/rewind" inspect demo

echo
echo "==> Fake provider stopped; replaying offline: rewind replay demo"
stop_fake
"$BIN/rewind" replay demo

echo
echo "==> What if step 1 had failed? Offline, one run per fault: rewind mutate demo --at 1"
# Exit 7 says some run failed, hung or diverged: the demo agent does not retry.
"$BIN/rewind" mutate demo --at 1 --faults 429,500,truncate,bad_tool_args || [ $? -eq 7 ]

echo
echo "==> Sharing it: rewind export demo -o demo.rw, imported into a second, empty store"
SHARE="$(mktemp -d)"  # a teammate's machine: its own store, the cassette sent over
CASSETTE="$SHARE/demo.rw"
"$BIN/rewind" export demo -o "$CASSETTE"
TEAMMATE="$SHARE/home"
REWIND_HOME="$TEAMMATE" "$BIN/rewind" import "$CASSETTE"
echo "==> Replaying it there: REWIND_HOME=teammate rewind replay demo"
REWIND_HOME="$TEAMMATE" "$BIN/rewind" replay demo
rm -rf "$SHARE"

echo
echo "==> Look at the demo sessions in a browser:"
echo "    REWIND_HOME=$REWIND_HOME $BIN/rewind ui"
