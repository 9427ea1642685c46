"""Regenerate the "A session (real output)" transcript of docs/guide/cli.md from real runs.

    .venv/bin/python tools/cli_session.py          # rewrites the block between the cli-session markers

The churn files are synthetic (a fixed seed), written into a temporary folder where the commands
run; each command's stdout and stderr are recorded as a terminal shows them, then its exit code
when it is not 0. Timings and checksums differ from run to run; everything else is reproducible.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "guide" / "cli.md"
START, END = "<!-- cli-session:start -->", "<!-- cli-session:end -->"

COMMANDS = [
    "loomnet datasets",
    "loomnet train builtin:wine --hidden 32 --epochs 10 --lr 0.01 -o wine.loom",
    "loomnet evaluate wine.loom builtin:wine",
    "head -3 churn.csv",
    "loomnet train churn.csv --target churned --quiet -o churn.loom",
    "loomnet inspect churn.loom",
    "loomnet evaluate churn.loom holdout.csv --json | python -c 'import json,sys; r=json.load(sys.stdin); "
    "print(r[\"metrics\"][\"accuracy\"], r[\"confusion_matrix\"])'",
    "loomnet predict churn.loom new_customers.csv --proba",
    "loomnet predict churn.loom builtin:wine",
    "timeout --preserve-status -s INT 6 loomnet train builtin:classification:n_samples=100000 --batch-size 8 "
    "--epochs 10 --recipe none --quiet --checkpoint-dir ck -o big.loom",
    "loomnet train builtin:classification:n_samples=100000 --batch-size 8 --epochs 10 --recipe none --quiet "
    "--checkpoint-dir ck -o big.loom --resume",
    "loomnet train builtin:classification:n_samples=100000 --batch-size 16 --epochs 10 --recipe none --quiet "
    "--checkpoint-dir ck -o big.loom --resume",
]


def churn_table(n: int, seed: int, with_target: bool = True) -> str:
    """Synthetic customers: numbers, two text columns, a few gaps, a target that depends on them."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    fee = np.round(np.where(plan == "basic", 15, np.where(plan == "plus", 40, 75)) + rng.normal(0, 3, n), 2)
    calls = rng.poisson(2, n)
    region = rng.choice(["north", "south", "east", "west"], n)
    logit = -1.2 - 0.04 * tenure + 0.45 * calls + 0.6 * (plan == "basic") + rng.normal(0, 0.5, n)
    churned = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    header = "tenure_months,plan,monthly_fee,support_calls,region" + (",churned" if with_target else "")
    lines = [header]
    for i in range(n):
        fee_text = "" if rng.random() < 0.03 else str(fee[i])  # a few missing fees
        row = [str(tenure[i]), plan[i], fee_text, str(calls[i]), region[i]] + ([churned[i]] if with_target else [])
        lines.append(",".join(row))
    return "\n".join(lines) + "\n"


def transcript(folder: Path) -> str:
    (folder / "churn.csv").write_text(churn_table(1000, 0))
    (folder / "holdout.csv").write_text(churn_table(200, 1))
    (folder / "new_customers.csv").write_text(churn_table(5, 2, with_target=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "100"}
    out = []
    for command in COMMANDS:
        result = subprocess.run(command, shell=True, cwd=folder, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)  # interleaved, as on a terminal
        text = result.stdout.rstrip("\n")
        out.append(f"$ {command}\n{text}" + (f"\n[exit code {result.returncode}]" if result.returncode else ""))
    return "\n\n".join(out)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        text = transcript(Path(tmp))
    page = PAGE.read_text()
    block = f"{START}\n```console\n{text}\n```\n{END}"
    page = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, page, flags=re.S)
    PAGE.write_text(page)
    print(f"rewrote the session in {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
