"""The code base stays ruff- and mypy-strict-clean: checked with the suite."""

from __future__ import annotations

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
