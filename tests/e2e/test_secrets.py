"""Secrets never reach disk: planted keys in ~50 places, through the real CLI and proxy.

Each group of placements is one recording (module-scoped, so the file stays fast); each
placement is asserted on its own, with its own key, built at run time (nothing key-shaped
is committed) and never put in an environment variable unless the placement is one.
A placement passes when neither the key nor its URL-encoded or base64 forms appear in
any byte under REWIND_HOME (``harness.all_stored_bytes``), nor in the CLI's output.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import PYTHON, Rewind, all_stored_bytes, make_env

pytestmark = pytest.mark.e2e

# Sends the requests described in a JSON file (never in the environment), then prints.
AGENT = """
import base64, json, sys, urllib.request
spec = json.load(open(sys.argv[1]))
for r in spec["requests"]:
    body = base64.b64decode(r["body"]) if r["body"] else None
    req = urllib.request.Request(r["url"], body, r["headers"], method=r["method"])
    try:
        urllib.request.urlopen(req, timeout=20).read()
    except Exception as exc:
        print("request failed:", type(exc).__name__, file=sys.stderr)
for line in spec["stdout"]:
    print(line)
for line in spec["stderr"]:
    print(line, file=sys.stderr)
"""


def shaped(n: int) -> str:
    """An OpenAI-shaped key, different for each ``n``."""
    return "sk-" + "proj-" + f"rwplant{n:03d}" + "abcdefghijklmnopqrstuvwx"


def plain(n: int) -> str:
    """A credential-looking value with no well-known shape: caught only by its name."""
    return f"Pl{n:03d}" + "Qx7Wm2R9vK4pLz"


def google(n: int) -> str:
    return "AI" + "za" + f"Sy{n:03d}" + "b" * 30


def jwt(n: int) -> str:
    part = base64.urlsafe_b64encode(json.dumps({"sub": f"user{n}", "n": n}).encode()).decode().rstrip("=")
    return "ey" + "JhbGciOiJIUzI1NiJ9." + part + ".sig" + f"{n:03d}" + "abcdefgh"


def github(n: int) -> str:
    return "gh" + "p_" + f"{n:03d}" + "a1B2c3D4e5" * 3 + "xyz"


def aws(n: int) -> str:
    return "AK" + "IA" + f"{n:03d}" + "QEGRZ7XKSW4TB"


def slack(n: int) -> str:
    return "xo" + "xb-" + f"{n:03d}" + "1234567-abcdefABCDEF"


@dataclass(frozen=True)
class Send:
    """One request of the agent: ``{key}`` in url, headers or body is the planted key."""

    method: str = "POST"
    path: str = "/tools/echo"
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    body: str = "{{}}"  # a str.format template

    def spec(self, key: str, host: str) -> dict[str, object]:
        fill = {"key": key, "qkey": quote(key, safe=""), "b64": base64.b64encode(key.encode()).decode()}
        body = self.body.format(**fill).encode()
        return {
            "method": self.method,
            "url": f"http://{host}{self.path.format(**fill)}",
            "headers": {k: v.format(**fill) for k, v in self.headers},
            "body": base64.b64encode(body).decode() if body else "",
        }


def form(body: str) -> Send:
    return Send(headers=(("Content-Type", "application/x-www-form-urlencoded"),), body=body)


def multipart(name: str) -> Send:
    body = f'--XyZ\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{{key}}\r\n--XyZ--\r\n'
    return Send(headers=(("Content-Type", "multipart/form-data; boundary=XyZ"),), body=body)


def get(path: str) -> Send:
    return Send(method="GET", path=path, body="")


def json_body(template: str) -> Send:
    return Send(body=template.replace("{", "{{").replace("}", "}}").replace("KEY", "{key}"))


# Placement name -> (key factory, what the agent sends). The echo tool sends the body back,
# so every body placement is in a response body too.
REQUESTS = {
    "header-authorization-bearer": (shaped, Send(headers=(("Authorization", "Bearer {key}"),))),
    "header-authorization-plain": (plain, Send(headers=(("Authorization", "Bearer {key}"),))),
    "header-x-api-key": (plain, Send(headers=(("x-api-key", "{key}"),))),
    "header-api-key": (plain, Send(headers=(("api-key", "{key}"),))),
    "header-x-goog-api-key": (plain, Send(headers=(("x-goog-api-key", "{key}"),))),
    "header-cookie": (plain, Send(headers=(("Cookie", "theme=dark; sid={key}"),))),
    "header-custom-token": (plain, Send(headers=(("X-Internal-Service-Token", "{key}"),))),
    "header-custom-secret": (plain, Send(headers=(("X-Client-Secret", "{key}"),))),
    "header-custom-signature": (plain, Send(headers=(("X-Request-Signature", "{key}"),))),
    "header-proxy-authorization": (plain, Send(headers=(("Proxy-Authorization", "Basic {b64}"),))),
    "header-unnamed-shaped": (github, Send(headers=(("X-Trace-Note", "{key}"),))),
    "query-key": (plain, get("/tools/weather?city=Oslo&key={qkey}")),
    "query-apikey": (plain, get("/tools/weather?city=Oslo&apikey={qkey}")),
    "query-token": (plain, get("/tools/weather?token={qkey}&city=Rome")),
    "query-access-token": (plain, get("/tools/weather?city=Lima&access_token={qkey}")),
    "query-sig": (plain, get("/tools/weather?city=Oslo&sig={qkey}")),
    "query-amz-signature": (plain, get("/tools/weather?city=Oslo&X-Amz-Signature={qkey}")),
    "query-amz-credential": (aws, get("/tools/weather?X-Amz-Credential={qkey}%2F20250101")),
    "query-password": (plain, get("/tools/weather?city=Oslo&password={qkey}")),
    "path-segment-shaped": (shaped, get("/tools/status/200/{key}")),
    "path-segment-google": (google, get("/v1beta/{key}/models")),
    "json-top-api-key": (plain, json_body('{"api_key": "KEY", "n": 1}')),
    "json-nested-password": (plain, json_body('{"a": {"b": [{"c": {"password": "KEY"}}]}}')),
    "json-client-secret": (plain, json_body('{"client_secret": "KEY"}')),
    "json-refresh-token": (plain, json_body('{"grant": {"refresh_token": "KEY"}}')),
    "json-custom-token-field": (plain, json_body('{"serviceToken": "KEY"}')),
    "json-escaped-tool-arguments": (
        plain,
        json_body('{"arguments": "{\\"api_key\\": \\"KEY\\"}"}'),
    ),
    "json-message-content-shaped": (shaped, json_body('{"messages": [{"content": "use KEY now"}]}')),
    "json-google-key-in-text": (google, json_body('{"content": "my key is KEY."}')),
    "json-jwt": (jwt, json_body('{"content": "token KEY"}')),
    "json-slack": (slack, json_body('{"content": "KEY"}')),
    "json-aws": (aws, json_body('{"content": "id KEY"}')),
    "form-password": (plain, form("user=bob&password={key}")),
    "form-client-secret": (plain, form("grant_type=client_credentials&client_secret={key}&x=1")),
    "form-shaped": (shaped, form("note={key}")),
    "multipart-api-key": (plain, multipart("api_key")),
    "multipart-token": (plain, multipart("upload_token")),
    "text-body-bearer": (
        plain,
        Send(headers=(("Content-Type", "text/plain"),), body="Authorization: Bearer {key}\n"),
    ),
}

# Answers the mint server gives to GET /mint/NAME, with {key} the planted key.
RESPONSES = {
    "response-set-cookie": (plain, (("Set-Cookie", "sid={key}; Path=/; HttpOnly"),), "{{}}"),
    "response-token-header": (plain, (("X-Auth-Token", "{key}"),), "{{}}"),
    "response-new-api-key": (plain, (), '{{"id": "k1", "api_key": "{key}"}}'),
    "response-access-token": (plain, (), '{{"access_token": "{key}", "expires_in": 3600}}'),
    "response-jwt": (jwt, (), '{{"id_token_hint": "see", "jwt": "{key}"}}'),
    "response-shaped-key": (shaped, (), '{{"created": "{key}"}}'),
    "response-github": (github, (), '{{"note": "{key}"}}'),
}

FLAG_KEYS = {
    "argv-api-key": (shaped, "--api-key"),
    "argv-token-eq": (plain, "--token="),
    "argv-password": (plain, "--password"),
}
ECHO_KEYS = {"stdout-echo-of-header-key": plain, "stderr-echo-of-header-key": plain}


def keys_for(names: list[str], factories: dict[str, object], start: int) -> dict[str, str]:
    return {name: factories[name](start + i) for i, name in enumerate(names)}  # type: ignore[operator]


class Mint(BaseHTTPRequestHandler):
    """A provider that hands out secrets in its responses (the outside world, faked)."""

    keys: dict[str, str] = {}

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        _, headers, body = RESPONSES[name]
        key = self.keys[name]
        data = body.format(key=key).encode()
        self.send_response(200)
        for k, v in headers:
            self.send_header(k, v.format(key=key))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


@dataclass
class Recorded:
    keys: dict[str, str]
    stored: bytes
    output: str
    steps: list[int]


def record(rw: Rewind, tmp: Path, spec: dict[str, object], *args: str, **env: str) -> str:
    spec_file = tmp / "spec.json"
    spec_file.write_text(json.dumps(spec))
    result: subprocess.CompletedProcess[str] = rw.record(
        *args, "--", PYTHON, "-c", AGENT, str(spec_file), **env
    )
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """Four recordings into one home: requests, responses, command line, routes/env."""
    tmp = tmp_path_factory.mktemp("secrets")
    rw = Rewind(tmp / "home", make_env(tmp / "home"))
    keys = keys_for(list(REQUESTS), {n: f for n, (f, _) in REQUESTS.items()}, 0)
    keys |= keys_for(list(RESPONSES), {n: f for n, (f, _, _) in RESPONSES.items()}, 100)
    keys |= keys_for(list(FLAG_KEYS), {n: f for n, (f, _) in FLAG_KEYS.items()}, 200)
    keys |= keys_for(list(ECHO_KEYS), ECHO_KEYS, 300)
    keys |= {"route-user-info": plain(400), "base-url-user-info": plain(401)}
    Mint.keys = keys
    mint = ThreadingHTTPServer(("127.0.0.1", 0), Mint)
    threading.Thread(target=mint.serve_forever, daemon=True).start()
    with FakeProvider() as fake:
        output = _record_all(rw, tmp, keys, fake, f"http://127.0.0.1:{mint.server_address[1]}")
    mint.shutdown()
    steps = sorted(s["steps"] for s in rw.json("list"))
    yield Recorded(keys, all_stored_bytes(rw.home), output, steps)


def _record_all(rw: Rewind, tmp: Path, keys: dict[str, str], fake: FakeProvider, mint_url: str) -> str:
    route = ("--route", f"secrets.example={fake.url}", "--route", f"mint.example={mint_url}")
    requests = [send.spec(keys[name], "secrets.example") for name, (_, send) in REQUESTS.items()]
    out = record(rw, tmp, {"requests": requests, "stdout": [], "stderr": []}, *route)
    minted = [get(f"/mint/{n}").spec("", "mint.example") for n in RESPONSES]
    out += record(rw, tmp, {"requests": minted, "stdout": [], "stderr": []}, *route)
    out += _record_command_line(rw, tmp, keys, route)
    routed = ("--route", f"routed.example=http://u:{keys['route-user-info']}@{fake.url[7:]}")
    base = {"OPENAI_BASE_URL": f"http://u:{keys['base-url-user-info']}@{fake.url[7:]}/v1"}
    ping = get("/tools/weather?city=Oslo").spec("", "routed.example")
    out += record(rw, tmp, {"requests": [ping], "stdout": [], "stderr": []}, *routed, **base)
    return out


def _record_command_line(rw: Rewind, tmp: Path, keys: dict[str, str], route: tuple[str, ...]) -> str:
    echo_out, echo_err = keys["stdout-echo-of-header-key"], keys["stderr-echo-of-header-key"]
    sends = [Send(headers=(("X-Api-Key", "{key}"),)).spec(k, "secrets.example") for k in (echo_out, echo_err)]
    spec = {"requests": sends, "stdout": [f"done with {echo_out}"], "stderr": [f"used {echo_err}"]}
    spec_file = tmp / "spec-argv.json"
    spec_file.write_text(json.dumps(spec))
    flags = [a for name, (_, flag) in FLAG_KEYS.items() for a in _flag_args(flag, keys[name])]
    result = rw.record(*route, "--", PYTHON, "-c", AGENT, str(spec_file), *flags)
    return result.stdout + result.stderr


def _flag_args(flag: str, key: str) -> list[str]:
    return [flag + key] if flag.endswith("=") else [flag, key]


ALL = [*REQUESTS, *RESPONSES, *FLAG_KEYS, *ECHO_KEYS, "route-user-info", "base-url-user-info"]


@pytest.mark.parametrize("placement", ALL)
def test_planted_key_never_reaches_disk(recorded: Recorded, placement: str) -> None:
    key = recorded.keys[placement]
    forms = {key, quote(key, safe=""), quote_plus(key), base64.b64encode(key.encode()).decode().rstrip("=")}
    for form_ in forms:
        assert form_.encode() not in recorded.stored, f"{placement}: {form_!r} is stored"


@pytest.mark.parametrize("placement", [*FLAG_KEYS, "route-user-info"])
def test_planted_key_is_not_printed_by_rewind(recorded: Recorded, placement: str) -> None:
    assert recorded.keys[placement] not in recorded.output.replace(f"{PYTHON} -c", "")


def test_every_request_was_recorded_and_redacted(recorded: Recorded) -> None:
    assert recorded.steps == sorted([len(REQUESTS), len(RESPONSES), len(ECHO_KEYS), 1])
    assert recorded.stored.count(b"[REDACTED]") > len(ALL)


def test_no_planted_key_is_in_the_environment(recorded: Recorded, tmp_path: Path) -> None:
    env = make_env(tmp_path)
    assert not any(key in value for key in recorded.keys.values() for value in env.values())
