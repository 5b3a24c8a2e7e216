"""The README's library example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no python example"
    return blocks[0]


def run_example(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "example.py"
    script.write_text(example())
    env = dict(os.environ, JOBCORE_URL=url, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)


def test_readme_example_on_memory(tmp_path: Path) -> None:
    res = run_example("memory://", tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.endswith(" done; 1 processed in all\n")
    line = next(ln for ln in res.stderr.splitlines() if "provisioning t3.small" in ln)
    assert "account_id=42 account_number=000123 org_id=org-9 job_id=" in line
    assert line.endswith("job_type=example.provision reservation_id=777")


def test_readme_example_on_redis_waits_for_its_own_job(tmp_path: Path, redis_url: str) -> None:
    first = run_example(redis_url, tmp_path)
    assert first.returncode == 0, first.stderr
    # Run again on the same Redis (history there): it waits for its own new job.
    again = run_example(redis_url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.endswith(" done; 2 processed in all\n")
    assert again.stdout.split()[0] != first.stdout.split()[0]


def test_readme_example_with_no_url_uses_the_local_server(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example())
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("JOBCORE_URL", None)
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert " done; " in res.stdout


def test_readmes_syncqueue_list_is_the_class() -> None:
    """Every public method of SyncQueue is in README's list, and nothing else is."""
    from jobcore import SyncQueue

    text = " ".join((ROOT / "README.md").read_text().split())
    facade = r"`jobcore\.SyncQueue\(url\)` is the blocking facade for Flask, Django or scripts: (.*?)\("
    listed = re.search(facade, text)
    assert listed, "README's SyncQueue list is gone"
    names = set(re.findall(r"`(\w+)`", listed.group(1)))
    methods = {n for n, v in vars(SyncQueue).items() if callable(v) and not n.startswith("_")}
    assert names == methods, (sorted(methods - names), sorted(names - methods))


def _parser_options() -> tuple[set[str], dict[str, set[str]]]:
    """The global options, and each command's options (its actions' too: dead list, ...)."""
    import argparse

    from jobcore.cli.parser import build_parser

    def options(p: argparse.ArgumentParser) -> set[str]:
        found = {o for a in p._actions for o in a.option_strings}
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    found |= options(sub)
        return found

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    top = {o for a in parser._actions for o in a.option_strings}
    return top, {name: options(sub) for name, sub in commands.choices.items()}


def _code() -> tuple[list[str], list[str]]:
    """README's inline code spans, and the lines of its fenced blocks (python's left out)."""
    prose: list[str] = []
    code: list[str] = []
    fence: str | None = None
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
        elif fence is None:
            prose.append(line)
        elif fence != "python":
            code.append(line)
    spans = re.findall(r"`([^`]+)`", " ".join(prose))
    return spans, code


def test_every_jobcore_command_and_option_in_readme_exists() -> None:
    """What README shows of `jobcore ...` runs: each command is the parser's, and each
    --option after it is that command's (or a global one)."""
    top, commands = _parser_options()
    spans, lines = _code()
    shown: list[tuple[str, str]] = []  # (command, the text after it)
    for text in [*spans, *lines]:
        m = re.match(r"\s*(?:\$ |\.venv/bin/)?jobcore\s+([a-z][a-z-]*)(.*)", text)
        if m:
            shown.append((m.group(1), m.group(2)))
    # The synopsis under "The `jobcore` command": a command a line, its options on the lines after.
    text = (ROOT / "README.md").read_text()
    synopsis = text.split("## The `jobcore` command", 1)[1].split("```", 2)[1]
    current = ""
    for line in synopsis.splitlines()[1:]:
        m = re.match(r"  ([a-z][a-z-]*)", line)
        if m:
            current = m.group(1)
        shown.append((current, line))
        if "| resume" in line:
            shown.append(("resume", line))
    assert len(shown) > 30  # the parse found README's commands
    unknown = []
    commands[""] = set()  # the synopsis's first line: the global options
    for command, rest in shown:
        if command not in commands:
            unknown.append(f"jobcore {command}")
            continue
        for option in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", rest):
            if option not in commands[command] | top:
                unknown.append(f"jobcore {command} ... {option}")
    assert not unknown, sorted(set(unknown))


def test_every_option_readmes_jobcore_section_names_exists() -> None:
    """A `--option` named on its own in "The `jobcore` command" is some command's."""
    top, commands = _parser_options()
    every = top.union(*commands.values())
    text = (ROOT / "README.md").read_text()
    section = text.split("## The `jobcore` command", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(--[a-z][a-z-]*)[^`]*`", section))
    assert len(named) > 8 and not named - every, sorted(named - every)
