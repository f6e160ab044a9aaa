"""Each stage imports only from stages to its left: capture -> canon -> store -> replay -> analysis -> cli."""

from __future__ import annotations

import ast
from pathlib import Path

ORDER = ["capture", "canon", "store", "replay", "analysis", "cli"]
PACKAGE = Path(__file__).resolve().parents[2] / "rewind"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rewind."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rewind."))
    return found


def test_stages_only_import_leftwards() -> None:
    for stage in ORDER:
        allowed = set(ORDER[: ORDER.index(stage) + 1])
        for path in (PACKAGE / stage).rglob("*.py"):
            wrong = _imports(path) & set(ORDER) - allowed
            assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"


def test_testing_doubles_use_no_stage() -> None:
    for path in (PACKAGE / "testing").rglob("*.py"):
        assert not _imports(path) & set(ORDER), path
