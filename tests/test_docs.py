"""The README's code cannot go stale: every ```python block runs, and the shell commands it shows exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
# docs pages whose Python blocks are complete programs (the others show fragments of a session)
RUNNABLE_PAGES = ["docs/guide/tabular.md"]
PAGE_BLOCKS = [(page, block) for page in RUNNABLE_PAGES
               for block in re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), re.S)]


def test_the_readme_is_short_and_keeps_the_two_commands():
    assert len(README.encode()) <= 10 * 1024
    assert "make demo" in README and "make test" in README


@pytest.mark.timeout(300)
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_of_the_readme_runs(index, tmp_path):
    result = subprocess.run([sys.executable, "-c", BLOCKS[index]], cwd=tmp_path, capture_output=True, text=True,
                            timeout=280)
    assert result.returncode == 0, result.stderr
    if "round(model.evaluate" in BLOCKS[index]:
        assert float(result.stdout.strip()) > 0.95
    if "cross_val_score" in BLOCKS[index] or "InferenceSession" in BLOCKS[index]:
        assert result.stdout.strip() == "True"


def test_the_commands_the_readme_shows_exist():
    from loomnet.cli.main import build_parser

    for command in sorted(set(re.findall(r"^loomnet (\w+)", README, re.M))):
        build_parser(command)  # an unknown command would raise SystemExit
        assert command in {"train", "predict", "evaluate", "explain", "inspect", "datasets", "export"}


def test_links_in_the_readme_point_at_files():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


@pytest.mark.timeout(120)
@pytest.mark.parametrize("index", range(len(PAGE_BLOCKS)))
def test_the_runnable_docs_blocks_run(index, tmp_path):
    page, block = PAGE_BLOCKS[index]
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, (page, result.stderr)


def test_every_docs_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        assert str(page.relative_to(ROOT / "docs")) in nav, page
