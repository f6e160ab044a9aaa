"""The CLI fixtures (a home, the CLI in-process) for the viewer's tests."""

from tests.unit.cli.conftest import home, rewind

__all__ = ["home", "rewind"]
