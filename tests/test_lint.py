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
    "jobcore.fair",
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


# The house: a file is one concern, the modules form layers without a circle, and a
# Redis error is known by its code (parsed once in jobcore/redis/resp.py), never its text.
MODULE_LINES_MAX = 520  # "about 500"


def _modules(package: str) -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def test_no_module_is_over_about_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for package in ("jobcore", "jobconsole")
        for p in _modules(package).values()
        if (n := len(p.read_text().splitlines())) > MODULE_LINES_MAX
    }
    assert long == {}


def _imports(mods: dict[str, Path], name: str) -> set[str]:
    """The jobcore modules ``name`` imports, wherever in the file (a lazy import is a
    dependency too), but not those imported only for type checking."""
    found: set[str] = set()
    tree = ast.parse(mods[name].read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if mods[name].name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def test_jobcore_has_no_import_circle() -> None:
    mods = _modules("jobcore")
    graph = {name: _imports(mods, name) for name in mods}
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert circles == []


ERROR_CODES = (
    "ASK|BUSY|BUSYGROUP|CLUSTERDOWN|CROSSSLOT|ERR|EXECABORT|LOADING|MASTERDOWN|MISCONF|MOVED|NOAUTH|NOGROUP|"
    "NOPERM|NOREPLICAS|NOSCRIPT|OOM|READONLY|TRYAGAIN|WRONGPASS|WRONGTYPE"
)
TEXT_MATCH = re.compile(
    rf"""(["'](?:{ERROR_CODES})\b[^"']*["']\s+(?:not\s+)?in\s)|(startswith\(\s*\(?\s*b?["']-?(?:{ERROR_CODES})\b)"""
)


def test_no_redis_error_is_known_by_its_text() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for package in ("jobcore", "jobconsole")
        for path in _modules(package).values()
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if TEXT_MATCH.search(line)
    ]
    assert offenders == []
