"""The import structure: ``core`` below every stage, then each stage importing only from
stages to its left (capture -> canon -> store -> replay -> analysis -> cli), and the
mitmdump scripts in ``addons/`` on top."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rewind"
BASE = ["core", "errors"]
ORDER = ["capture", "canon", "store", "replay", "analysis", "cli", "ui"]
# capture is only the mitmproxy edge: the stages after it need none of it but these two
# composition points, which wire the proxy (replay's addons and the CLI).
CAPTURE_USERS = {"replay/addon.py", "replay/forking.py", "cli"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rewind."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rewind."))
    return found


def _stage_files(stage: str) -> list[Path]:
    return list((PACKAGE / stage).rglob("*.py"))


def test_stages_only_import_leftwards() -> None:
    for stage in ORDER:
        allowed = set(ORDER[: ORDER.index(stage) + 1]) | set(BASE)
        for path in _stage_files(stage):
            wrong = _imports(path) - allowed - {"testing"}
            assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"


def test_core_imports_no_stage() -> None:
    for path in _stage_files("core"):
        assert not _imports(path) & set(ORDER), path


def test_plain_data_stages_do_not_need_capture() -> None:
    for stage in ("canon", "store"):
        for path in _stage_files(stage):
            assert "capture" not in _imports(path), f"{path.relative_to(PACKAGE)} imports capture"


def test_later_stages_use_capture_only_where_they_wire_the_proxy() -> None:
    for stage in ("replay", "analysis"):
        for path in _stage_files(stage):
            rel = str(path.relative_to(PACKAGE))
            if rel not in CAPTURE_USERS:
                assert "capture" not in _imports(path), f"{rel} imports capture"


def test_this_test_sees_a_violation() -> None:
    bad = ROOT / "tests" / "unit" / "_layer_probe.py"
    bad.write_text("from rewind.cli.app import App\n", encoding="utf-8")
    try:
        assert _imports(bad) == {"cli"}
    finally:
        bad.unlink()


def test_addons_sit_on_top() -> None:
    for path in (ROOT / "addons").glob("*.py"):
        assert _imports(path) <= {"cli"}, path


def test_testing_doubles_use_no_stage() -> None:
    for path in (PACKAGE / "testing").rglob("*.py"):
        assert not _imports(path) & set(ORDER), path
