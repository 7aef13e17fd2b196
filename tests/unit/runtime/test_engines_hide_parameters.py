"""Every SQLAlchemy engine the code builds hides bound parameters from errors and logs."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCES = [ROOT / "libs", ROOT / "services", ROOT / "cli"]


def _engine_calls() -> list[tuple[Path, ast.Call]]:
    calls = []
    for base in SOURCES:
        for path in base.rglob("src/**/*.py"):
            if "/v1/" in path.as_posix():
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                    if name in {"create_async_engine", "_create_async_engine", "create_engine"}:
                        calls.append((path, node))
    return calls


def test_every_engine_is_built_with_hide_parameters() -> None:
    direct = [
        (path, call)
        for path, call in _engine_calls()
        if getattr(call.func, "id", "") != "create_engine"  # ours: tzurot.db.engine
    ]
    assert len(direct) >= 2  # the pool, migrations (the local database tool uses plain asyncpg)
    for path, call in direct:
        flags = {kw.arg: kw.value for kw in call.keywords}
        value = flags.get("hide_parameters")
        assert isinstance(value, ast.Constant), (path, call.lineno)
        assert value.value is True, (path, call.lineno)
