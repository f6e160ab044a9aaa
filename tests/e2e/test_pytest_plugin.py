"""The pytest plugin (plugins/pytest-rewind) in each mode, run with pytest's ``pytester``.

Each inner test asks the fake provider, as ``https://api.openai.com`` (routed while
recording), through the environment the plugin wires (HTTPS_PROXY and Rewind's CA
bundle, which urllib honours). The plugin drives the real ``rewind`` command of this
environment (``REWIND_BIN``); the inner pytest runs in a subprocess.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import BIN, ROOT

pytestmark = pytest.mark.e2e
pytest_plugins = ["pytester"]

PLUGIN = ROOT / "plugins" / "pytest-rewind"
INNER = """
import json, os, urllib.request
import pytest

def ask(text):
    body = json.dumps({{"model": "gpt-4o", "messages": [{{"role": "user", "content": text}}]}}).encode()
    headers = {{"Authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", "k"),
               "Content-Type": "application/json"}}
    req = urllib.request.Request("https://api.openai.com/v1/chat/completions", body, headers)
    return json.load(urllib.request.urlopen(req, timeout=30))["choices"][0]["message"]["content"]

@pytest.mark.rewind(cassette="cassettes/hello.rw", mode={mode!r}, route=[{route!r}])
def test_hello():
    for prompt in {prompts!r}:
        assert prompt in ask(prompt)
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake: FakeProvider) -> pytest.Pytester:
    monkeypatch.setenv("REWIND_BIN", str(BIN / "rewind"))
    monkeypatch.setenv("PYTHONPATH", f"{PLUGIN}:{ROOT}")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only the plugin given with -p
    return pytester


def run(pytester: pytest.Pytester, fake: FakeProvider, mode: str, *prompts: str,
        args: tuple[str, ...] = ()) -> pytest.RunResult:
    route = f"api.openai.com={fake.url}"
    pytester.makepyfile(test_agent=INNER.format(mode=mode, route=route, prompts=list(prompts)))
    return pytester.runpytest_subprocess("-p", "pytest_rewind", "-p", "no:cacheprovider", *args)


def cassette_steps(pytester: pytest.Pytester) -> int:
    verified = subprocess.run([str(BIN / "rewind"), "verify", str(pytester.path / "cassettes/hello.rw"),
                               "--json"], capture_output=True, text=True, check=True)
    return int(json.loads(verified.stdout)["sessions"][0]["steps"])


def test_once_records_a_missing_cassette_and_then_replays_it_offline(
    inner: pytest.Pytester, fake: FakeProvider
) -> None:
    run(inner, fake, "once", "hello").assert_outcomes(passed=1)
    assert fake.request_count == 1 and (inner.path / "cassettes/hello.rw").exists()
    run(inner, fake, "none", "hello").assert_outcomes(passed=1)
    assert fake.request_count == 1, "replay reached the upstream"


def test_none_without_a_cassette_fails_saying_how_to_record(
    inner: pytest.Pytester, fake: FakeProvider
) -> None:
    result = run(inner, fake, "none", "hello")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*does not exist*--rewind-mode once*"])
    assert fake.request_count == 0


def test_a_miss_fails_the_test_with_the_explanation(inner: pytest.Pytester, fake: FakeProvider) -> None:
    run(inner, fake, "once", "hello").assert_outcomes(passed=1)
    result = run(inner, fake, "none", "goodbye")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*cassette does not have*", "*Missed requests: 1*", "*Nearest recorded*"])
    assert fake.request_count == 1


def test_all_records_again(inner: pytest.Pytester, fake: FakeProvider) -> None:
    run(inner, fake, "once", "hello").assert_outcomes(passed=1)
    first = (inner.path / "cassettes/hello.rw").read_bytes()
    run(inner, fake, "all", "hello").assert_outcomes(passed=1)
    assert fake.request_count == 2 and (inner.path / "cassettes/hello.rw").read_bytes() != first


def test_new_episodes_replays_known_calls_and_records_new_ones(
    inner: pytest.Pytester, fake: FakeProvider
) -> None:
    run(inner, fake, "once", "hello").assert_outcomes(passed=1)
    run(inner, fake, "new_episodes", "hello", "again").assert_outcomes(passed=1)
    assert fake.request_count == 2  # only the new call went upstream
    assert cassette_steps(inner) == 2
    run(inner, fake, "none", "hello", "again").assert_outcomes(passed=1)
    assert fake.request_count == 2


def test_the_command_line_mode_overrides_the_marker(inner: pytest.Pytester, fake: FakeProvider) -> None:
    run(inner, fake, "none", "hello", args=("--rewind-mode", "once")).assert_outcomes(passed=1)
    assert fake.request_count == 1 and cassette_steps(inner) == 1


PLUGIN_VENV = ROOT / ".venv-plugin"


def test_the_example_runs_in_a_users_own_environment_with_the_latest_openai_sdk() -> None:
    """``make plugin`` builds a user's test environment: the latest openai SDK, pytest and the
    plugin, and no mitmproxy (whose h11 pin current httpx rejects on Python 3.11)."""
    python = PLUGIN_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"{PLUGIN_VENV} is missing: run `make plugin`")
    assert subprocess.run([str(python), "-c", "import mitmproxy"], capture_output=True).returncode != 0
    env = {"PATH": "/usr/bin:/bin", "REWIND_BIN": str(BIN / "rewind"), "HOME": str(ROOT)}
    ran = subprocess.run([str(PLUGIN_VENV / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "examples"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout
