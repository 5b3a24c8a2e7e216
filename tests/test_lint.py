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


# jobconsole depends on jobcore's public face only: the names in jobcore.__all__ and
# these modules (the list in jobcore/__init__.py's docstring).
JOBCORE_PUBLIC_MODULES = {
    "jobcore.cli.parser",
    "jobcore.demo",
    "jobcore.display",
    "jobcore.limits",
    "jobcore.local",
    "jobcore.logs",
    "jobcore.loop_thread",
    "jobcore.schema",
}


def test_jobconsole_imports_only_jobcores_public_names() -> None:
    import jobcore

    offenders: list[str] = []
    for path in sorted((ROOT / "jobconsole").rglob("*.py")):
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("jobcore.") and alias.name not in JOBCORE_PUBLIC_MODULES:
                        offenders.append(f"{where}:{node.lineno} import {alias.name}")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "jobcore":
                    private = [a.name for a in node.names if a.name not in jobcore.__all__]
                    offenders += [f"{where}:{node.lineno} jobcore.{name}" for name in private]
                elif node.module.startswith("jobcore.") and node.module not in JOBCORE_PUBLIC_MODULES:
                    offenders.append(f"{where}:{node.lineno} from {node.module}")
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "jobcore"
                and node.attr not in jobcore.__all__
            ):
                offenders.append(f"{where}:{node.lineno} jobcore.{node.attr}")
    assert offenders == []
