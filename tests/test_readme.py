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
    assert "'processed': 1" in res.stdout
    line = next(ln for ln in res.stderr.splitlines() if "launching t3.small" in ln)
    assert "account_id=42 account_number=000123 org_id=org-9 job_id=" in line
    assert line.endswith("job_type=launch reservation_id=777")


def test_readme_example_on_redis(tmp_path: Path, redis_url: str) -> None:
    res = run_example(redis_url, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "'processed': 1" in res.stdout
