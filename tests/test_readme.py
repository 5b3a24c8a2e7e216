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
