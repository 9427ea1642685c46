"""Running the ``loomnet`` command as a subprocess, as a user would, and small data files for it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

TINY = ["--epochs", "3", "--hidden", "8", "--no-plot", "--quiet"]


def run_cli(*args: str, cwd: Path | str | None = None, timeout: float = 120, prelude: str = "",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m loomnet ARGS``; ``prelude`` is Python run first in that process (to inject faults)."""
    if prelude:
        code = textwrap.dedent(prelude) + "\nimport sys\nfrom loomnet.cli import main\nsys.exit(main(sys.argv[1:]))\n"
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", "loomnet", *args]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2 and exactly one line ``error: ...`` on stderr mentioning every fragment."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_people_csv(path: Path, n: int = 120, seed: int = 0, missing: bool = False) -> Path:
    """A CSV with numeric and text features and a text label that depends on both."""
    rng = np.random.default_rng(seed)
    cities = np.array(["Lyon", "Oslo", "Quito"])
    rows = ["age,city,income,label"]
    for i in range(n):
        age = rng.integers(18, 80)
        city = cities[rng.integers(0, 3)]
        income = rng.normal(50, 15)
        label = "yes" if (income > 50) ^ (city == "Oslo") else "no"
        age_text = "" if missing and i == 4 else str(age)
        rows.append(f"{age_text},{city},{income:.2f},{label}")
    path.write_text("\n".join(rows) + "\n")
    return path
