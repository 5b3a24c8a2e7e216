"""The code base stays ruff- and mypy-strict-clean: checked with the suite."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    res = run("ruff", "check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict_is_clean() -> None:
    res = run("mypy")
    assert res.returncode == 0, res.stdout + res.stderr


def test_jobcore_never_imports_textual() -> None:
    code = "import sys, jobcore, jobcore.cli, jobcore.worker, jobcore.demo; print('textual' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "False", res.stderr
    offenders = [p for p in (ROOT / "jobcore").rglob("*.py") if "textual" in p.read_text()]
    assert offenders == []


def test_every_redis_key_is_named_in_keys_module() -> None:
    # Key strings are built only in jobcore/keys.py.
    key_like = re.compile(r"""["']jobcore:[^\s"']|\{(self\.)?namespace\}:""")
    for path in (ROOT / "jobcore").rglob("*.py"):
        if path.name == "keys.py":
            continue
        assert not key_like.search(path.read_text()), path
    assert key_like.search((ROOT / "jobcore" / "keys.py").read_text())


# jobconsole depends on jobcore's public face only: these modules, whole ...
JOBCORE_PUBLIC = {
    "jobcore",
    "jobcore.cli.main",
    "jobcore.cli.parser",
    "jobcore.demo",
    "jobcore.display",
    "jobcore.errors",
    "jobcore.limits",
    "jobcore.local",
    "jobcore.logs",
    "jobcore.loop_thread",
}
# ... and these names, imported from their own modules until jobcore/__init__.py re-exports them.
AWAITING_REEXPORT = {
    "jobcore.ops.find": {"found_bad", "in_flight_matches"},
    "jobcore.ops.history": {"History", "TypeHistory"},
    "jobcore.ops.triage": {"FailureGroup", "group_failures"},
    "jobcore.ops.why": {"Explanation"},
    "jobcore.registry": {"load_handlers"},
    "jobcore.schema": {"check_args", "describe"},
}


def test_jobconsole_imports_only_jobcores_public_names() -> None:
    import jobcore

    offenders: list[str] = []
    awaiting: dict[str, set[str]] = {}
    for path in sorted((ROOT / "jobconsole").rglob("*.py")):
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "jobcore" and alias.name not in JOBCORE_PUBLIC:
                        offenders.append(f"{where}:{node.lineno} import {alias.name}")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                module = node.module
                if module.split(".")[0] != "jobcore" or module in JOBCORE_PUBLIC - {"jobcore"}:
                    continue
                for alias in node.names:
                    if module == "jobcore" and alias.name in jobcore.__all__:
                        continue
                    if alias.name in AWAITING_REEXPORT.get(module, set()):
                        awaiting.setdefault(module, set()).add(alias.name)
                        continue
                    offenders.append(f"{where}:{node.lineno} from {module} import {alias.name}")
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "jobcore"
                and node.attr not in jobcore.__all__
            ):
                offenders.append(f"{where}:{node.lineno} jobcore.{node.attr}")
    assert offenders == []
    assert awaiting == AWAITING_REEXPORT  # a name re-exported and imported from jobcore leaves the list
