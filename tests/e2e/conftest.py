"""Fixtures for end-to-end tests: a fresh store, the CLI bound to it, a fake provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewind.testing.fake_provider import FakeProvider
from tests.e2e.harness import Rewind, make_env


@pytest.fixture
def rw(tmp_path: Path) -> Rewind:
    home = tmp_path / "home"
    return Rewind(home, make_env(home))


@pytest.fixture
def fake(fake_provider: FakeProvider) -> FakeProvider:
    """The fake provider of tests/conftest.py, under a short name."""
    return fake_provider


@pytest.fixture
def routes(fake: FakeProvider) -> list[str]:
    """--route options sending the demo's hosts to the fake provider."""
    return ["--route", f"api.openai.com={fake.url}", "--route", f"weather.example={fake.url}"]
