"""Cassettes through the real CLI: record in one home, export, import into a second home
(a teammate's machine), replay there offline with identical output. Python, Node and Go
agents; a tampered, truncated or random file; signatures with the right and the wrong
key; a second import; a secret found at export.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import DEMO_AGENT, PYTHON, ROOT, SECRET, Rewind, make_env

pytestmark = pytest.mark.e2e

CLIENTS = ROOT / "tests" / "clients"
OFFLINE = {"OPENAI_API_KEY": ""}


@pytest.fixture
def teammate(tmp_path: Path) -> Rewind:
    """The CLI against a second, empty store."""
    home = tmp_path / "teammate"
    return Rewind(home, make_env(home))


def record(rw: Rewind, fake: FakeProvider, command: Sequence[str], name: str = "run") -> str:
    routes = ["--route", f"api.openai.com={fake.url}", "--route", f"weather.example={fake.url}"]
    recorded = rw.record("--name", name, *routes, "--", *command)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    return recorded.stdout


def shared(rw: Rewind, teammate: Rewind, tmp_path: Path, *options: str) -> Path:
    cassette = tmp_path / "run.rw"
    exported = rw("export", "run", "-o", str(cassette), *options)
    assert exported.returncode == 0, exported.stderr
    return cassette


def home_state(home: Path) -> dict[str, str]:
    """Every file under a home and its content's hash."""
    if not home.exists():
        return {}
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("agent", ["python", "node", "go"])
def test_a_run_replays_offline_on_another_machine(
    rw: Rewind, teammate: Rewind, fake: FakeProvider, tmp_path: Path, agent: str,
    request: pytest.FixtureRequest,
) -> None:
    command = {
        "python": lambda: DEMO_AGENT,
        "node": lambda: request.getfixturevalue("node_agent"),
        "go": lambda: [str(request.getfixturevalue("go_agent"))],
    }[agent]()
    stdout = record(rw, fake, command)
    cassette = shared(rw, teammate, tmp_path)
    assert SECRET.encode() not in cassette.read_bytes()
    imported = teammate("import", str(cassette), "--json")
    assert imported.returncode == 0, imported.stderr
    [sid] = json.loads(imported.stdout)["added"]
    before = fake.request_count
    replayed = teammate("replay", "run", **OFFLINE)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == stdout and "Output identical." in replayed.stderr
    assert fake.request_count == before, "the teammate's replay reached the upstream"
    assert teammate.json("inspect", sid)["steps"] == rw.json("inspect", sid)["steps"]


def test_importing_twice_adds_nothing(
    rw: Rewind, teammate: Rewind, fake: FakeProvider, tmp_path: Path
) -> None:
    record(rw, fake, DEMO_AGENT)
    cassette = shared(rw, teammate, tmp_path)
    assert teammate("import", str(cassette)).returncode == 0
    state = home_state(teammate.home)
    again = teammate("import", str(cassette), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["added"] == []
    assert home_state(teammate.home) == state
    assert len(teammate.json("list")) == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "random", "empty"])
def test_a_damaged_file_is_refused_and_the_store_is_unchanged(
    rw: Rewind, teammate: Rewind, fake: FakeProvider, tmp_path: Path, damage: str
) -> None:
    record(rw, fake, DEMO_AGENT)
    good = shared(rw, teammate, tmp_path).read_bytes()
    bad = {
        "flip": good[:-40] + bytes([good[-40] ^ 0x10]) + good[-39:],
        "truncate": good[: len(good) // 2],
        "random": hashlib.sha256(b"noise").digest() * 40,
        "empty": b"",
    }[damage]
    path = tmp_path / "bad.rw"
    path.write_bytes(bad)
    teammate("list")  # the home exists, empty
    state = home_state(teammate.home)
    for command in ("verify", "import"):
        result = teammate(command, str(path))
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.startswith("rewind: error: ") and "Traceback" not in result.stderr
    assert home_state(teammate.home) == state


def test_a_signed_cassette_imports_with_its_key_and_not_with_another(
    rw: Rewind, teammate: Rewind, fake: FakeProvider, tmp_path: Path
) -> None:
    record(rw, fake, DEMO_AGENT)
    for name in ("mine", "theirs"):
        assert rw("keygen", "-o", str(tmp_path / name)).returncode == 0
    cassette = shared(rw, teammate, tmp_path, "--sign", str(tmp_path / "mine"))
    wrong = teammate("import", str(cassette), "--trust", str(tmp_path / "theirs.pub"))
    assert wrong.returncode == 1 and "not by the trusted key" in wrong.stderr
    assert teammate("list", "--json").stdout.strip() in ("", "[]")
    verified = teammate("verify", str(cassette), "--trust", str(tmp_path / "mine.pub"), "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["key_id"]
    right = teammate("import", str(cassette), "--trust", str(tmp_path / "mine.pub"))
    assert right.returncode == 0, right.stderr
    unsigned = tmp_path / "unsigned.rw"
    assert rw("export", "run", "-o", str(unsigned)).returncode == 0
    refused = teammate("import", str(unsigned), "--trust", str(tmp_path / "mine.pub"))
    assert refused.returncode == 1 and "not signed" in refused.stderr


ECHOES_A_TOKEN = """
import json, os, urllib.request
body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "say " + os.environ["WORD"]}]})
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", body.encode(),
                             {"Authorization": "Bearer k", "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req))["choices"][0]["message"]["content"])
"""


def test_export_refuses_a_secret_naming_the_step(rw: Rewind, fake: FakeProvider, tmp_path: Path) -> None:
    word = "tok-" + "9f8e7d6c5b4a39281706"  # not a secret when recorded...
    routes = ["--route", f"api.openai.com={fake.url}"]
    recorded = rw.record("--name", "run", *routes, "--", PYTHON, "-c", ECHOES_A_TOKEN,
                         WORD=word, OPENAI_BASE_URL="https://api.openai.com/v1")
    assert recorded.returncode == 0, recorded.stderr
    out = tmp_path / "run.rw"
    refused = rw("export", "run", "-o", str(out), MY_SERVICE_TOKEN=word)  # ...but it is one here
    assert refused.returncode == 1, refused.stderr
    assert "step 1" in refused.stderr and "secret" in refused.stderr and not out.exists()


def test_a_cassette_from_another_machines_paths_replays_here(
    rw: Rewind, teammate: Rewind, fake: FakeProvider, tmp_path: Path
) -> None:
    """The recorded working directory need not exist: replay runs in the current one."""
    from rewind.store import cassette as fmt
    from rewind.store import transfer
    from rewind.store.home import Home
    from rewind.store.index import Store

    stdout = record(rw, fake, DEMO_AGENT)
    manifest, blobs = transfer._collect(Store(Home(rw.home)), ["run"])
    manifest.sessions[0]["cwd"] = "/Users/someone/Projects/agent"  # a macOS home, not here
    path = tmp_path / "mac.rw"
    with path.open("wb") as f:
        fmt.write(f, manifest, blobs.__getitem__)
    assert teammate("import", str(path)).returncode == 0
    replayed = teammate("replay", "run", **OFFLINE)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == stdout and "Output identical." in replayed.stderr
