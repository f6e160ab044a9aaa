#!/usr/bin/env bash
# An agent made of curl calls, for Rewind's end-to-end tests.
#
# POSTs to https://api.openai.com/v1/chat/completions (or --base-url URL): curl honours
# https_proxy/HTTPS_PROXY and CURL_CA_BUNDLE, so under `rewind record` it goes through the
# recording proxy. One JSON call, one streamed call (-N), one tool-call round trip; prints
# the same lines as tests/clients/py_openai_agent.py (python3 only builds and reads JSON).
#
# usage: curl_agent.sh [--base-url URL] [--suffix TEXT]     (needs OPENAI_API_KEY)
set -uo pipefail

BASE_URL=https://api.openai.com/v1
SUFFIX=""
while [ $# -gt 0 ]; do
    case "$1" in
        --base-url) BASE_URL=${2%/}; shift 2 ;;
        --suffix) SUFFIX=$2; shift 2 ;;
        *) echo "usage: $0 [--base-url URL] [--suffix TEXT]" >&2; exit 2 ;;
    esac
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILED=0

# JSON in and out: `python3 -c "$JSON_TOOL" MODE ARGS...`.
read -r -d '' JSON_TOOL <<'PY'
import json, sys
mode, args = sys.argv[1], sys.argv[2:]
MODEL = "gpt-4o-mini"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string", "description": "The city name"}}}}}]

def load(path):
    with open(path) as f:
        return json.load(f)

def show_usage(label, u):
    print(f"{label} usage: input={u['prompt_tokens']} output={u['completion_tokens']} "
          f"total={u['total_tokens']}")

def request(text, **extra):
    message = {"role": "user", "content": f"{text} {args[0]}".strip()}
    print(json.dumps({"model": MODEL, "messages": [message], **extra}))

def sse(path):
    text, usage = [], None
    for line in open(path):
        if line.startswith("data: ") and line.strip() != "data: [DONE]":
            chunk = json.loads(line[len("data: "):])
            text += [c["delta"].get("content") or "" for c in chunk["choices"]]
            usage = chunk.get("usage") or usage
    print("stream: " + "".join(text))
    show_usage("stream", usage)

def tool_result(request_path, reply_path, out_path):
    body, message = load(request_path), load(reply_path)["choices"][0]["message"]
    call = message["tool_calls"][0]
    arguments = json.loads(call["function"]["arguments"])
    print(f"tool call: {call['function']['name']} {json.dumps(arguments, sort_keys=True)}")
    result = {"city": arguments["city"], "forecast": "sunny", "temp_c": 21}
    print(f"tool result: {json.dumps(result, sort_keys=True)}")
    answer = {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
    body["messages"] += [message, answer]
    with open(out_path, "w") as f:
        json.dump(body, f)

def error(label, path, status):
    try:
        kind = load(path)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        kind = "unknown"
    print(f"{label} error: {status} {kind}")

if mode == "plain":
    request("Say hello to Rewind.")
elif mode == "stream":
    request("Count from one to five.", stream=True, stream_options={"include_usage": True})
elif mode == "tool":
    request("What's the weather in Paris?", tools=TOOLS)
elif mode == "reply":
    reply = load(args[1])
    print(f"{args[0]}: {reply['choices'][0]['message']['content']}")
    show_usage(args[0], reply["usage"])
elif mode == "sse":
    sse(args[0])
elif mode == "tool_result":
    tool_result(*args)
elif mode == "error":
    error(*args)
PY

json_tool() { python3 -c "$JSON_TOOL" "$@"; }

# post LABEL BODY_FILE OUT_FILE [CURL_ARGS...]: prints an error line and fails on non-2xx.
post() {
    local label=$1 body=$2 out=$3 status
    shift 3
    status=$(curl -sS "$@" -o "$out" -w '%{http_code}' \
        -H "Authorization: Bearer ${OPENAI_API_KEY:-}" -H 'Content-Type: application/json' \
        --data-binary "@$body" "$BASE_URL/chat/completions" 2>/dev/null)
    if [ "${status:-000}" = 000 ]; then
        echo "$label error: connection"
    elif [ "$status" -ge 400 ]; then
        json_tool error "$label" "$out" "$status"
    else
        return 0
    fi
    FAILED=1
    return 1
}

plain() {
    json_tool plain "$SUFFIX" >"$WORK/plain.json"
    post plain "$WORK/plain.json" "$WORK/plain.out" && json_tool reply plain "$WORK/plain.out"
}

streamed() {
    json_tool stream "$SUFFIX" >"$WORK/stream.json"
    post stream "$WORK/stream.json" "$WORK/stream.out" -N && json_tool sse "$WORK/stream.out"
}

tool_round_trip() {
    json_tool tool "$SUFFIX" >"$WORK/tool.json"
    post tool "$WORK/tool.json" "$WORK/tool.out" || return 1
    json_tool tool_result "$WORK/tool.json" "$WORK/tool.out" "$WORK/final.json"
    post tool "$WORK/final.json" "$WORK/final.out" && json_tool reply final "$WORK/final.out"
}

plain
streamed
tool_round_trip
exit "$FAILED"
