"""The docs cannot go stale: every ```python block of the README and of every docs page runs, and
every command the shell blocks show exists with the options they give.

The convention for docs pages: a page's ```python and ```pycon blocks run in order, in one process
and one namespace, in an empty folder, after the page's hidden setup (an HTML comment
``<!-- docs-test setup ... -->``, invisible on the site) which makes the names the page's fragments
use (``X``, ``y``, a fitted ``model``). A ```pycon block is an interactive session (``>>>``): the
output it shows is checked by doctest (ELLIPSIS and NORMALIZE_WHITESPACE), so show output only
where it is deterministic and elide the rest with ``...``.
In ```bash and ```console blocks, every ``loomnet`` command is parsed by the real argument
parser, every ``make`` target must exist in the Makefile, every ``python -m`` module and every
test path must exist.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
CODE_BLOCK = re.compile(r"```(python|pycon)\n(.*?)```", re.S)
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if CODE_BLOCK.search(p.read_text()))
SHELL_PAGES = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md")
                                            if re.search(r"```(bash|console)", p.read_text()))


def page_blocks(page: Path) -> list[tuple[str, str]]:
    """The page's setup comment (as python), then its code blocks in order: (kind, source)."""
    text = page.read_text()
    setup = [("python", code) for code in re.findall(r"<!-- docs-test setup\n(.*?)-->", text, re.S)]
    return setup + CODE_BLOCK.findall(text)


# runs a page's blocks in one namespace: python blocks are executed, pycon blocks checked by doctest
PAGE_RUNNER = """
import doctest, json, sys
name, blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
for number, (kind, source) in enumerate(blocks):
    where = f"{name}, block {number}"
    if kind == "python":
        exec(compile(source, where, "exec"), namespace)
        continue
    test = doctest.DocTestParser().get_doctest(source, namespace, where, name, 0)
    runner = doctest.DocTestRunner(optionflags=flags)
    runner.run(test, out=sys.stderr.write, clear_globs=False)
    namespace.update(test.globs)  # a DocTest runs in a copy: carry its names to the next block
    if runner.failures:
        sys.exit(f"{where}: {runner.failures} example(s) failed")
"""


def page_program(page: Path) -> str:
    """All of the page's code as one text (for choosing what the page needs)."""
    return "\n".join(source for _, source in page_blocks(page))


def shell_lines(page: Path) -> list[str]:
    """The commands of a page's bash/console blocks (console: the ``$`` lines), continuations joined."""
    lines = []
    for kind, block in re.findall(r"```(bash|console)\n(.*?)```", page.read_text(), re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            if kind == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


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


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_python_block_of_every_docs_page_runs(page, tmp_path):
    if "mpi4py" in page_program(page) or "backend=\"mpi\"" in page_program(page):
        pytest.importorskip("mpi4py")
    import json

    result = subprocess.run([sys.executable, "-c", PAGE_RUNNER], cwd=tmp_path, capture_output=True, text=True,
                            timeout=280, input=json.dumps([page.name, page_blocks(page)]))
    assert result.returncode == 0, (page.name, result.stderr[-3000:])


def test_the_docs_hold_more_than_40_checked_code_blocks():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    code = sum(len(CODE_BLOCK.findall(p.read_text())) for p in pages)
    shell = sum(len(re.findall(r"```(bash|console)\n", p.read_text())) for p in pages)
    assert code + shell > 40, f"{code} python/pycon and {shell} shell blocks"


def _check_command(words: list[str], makefile: str) -> None:
    from loomnet.cli.main import build_parser

    while words and ("=" in words[0] and not words[0].startswith("-")):  # VAR=value prefixes
        words = words[1:]
    if not words:
        return
    program = Path(words[0]).name
    if program in ("mpiexec", "timeout"):  # launchers: check what they launch
        rest = words[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in ("-n", "-s") else rest[1:]
        if program == "timeout":
            rest = rest[1:]  # the duration
        return _check_command(rest, makefile)
    if program == "loomnet":
        command = words[1]
        parser = build_parser(command)
        args = [w for w in words[2:] if w != "|"]
        parser.parse_args([command] + (args[:args.index("|")] if "|" in args else args))
    elif program == "make":
        for target in words[1:]:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"make {target}: no such target"
    elif program.startswith("python") and words[1:2] == ["-m"]:
        module = words[2]
        if module.startswith(("benchmarks", "loomnet")):
            base = ROOT / ("src" if module.startswith("loomnet") else "") / module.replace(".", "/")
            assert base.with_suffix(".py").exists() or (base / "__main__.py").exists(), module
    elif program in ("pytest", "bash"):
        for word in words[1:]:
            if word.startswith(("tests", "tools")):
                assert (ROOT / word).exists(), word


@pytest.mark.parametrize("page", SHELL_PAGES, ids=lambda p: p.name)
def test_every_command_of_the_shell_blocks_exists_with_its_options(page):
    import shlex

    from loomnet.cli.main import UsageError

    makefile = (ROOT / "Makefile").read_text()
    for line in shell_lines(page):
        for part in re.split(r"&&|;", line):
            try:
                words = shlex.split(part.split("|")[0])
            except ValueError:  # a line inside a multi-line quoted argument (python -c "...")
                continue
            try:
                _check_command(words, makefile)
            except (SystemExit, UsageError) as exc:  # argparse refused the options
                pytest.fail(f"{page.name}: `{line}` is refused by the parser ({exc})")


def test_every_docs_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        assert str(page.relative_to(ROOT / "docs")) in nav, page


def test_the_cli_session_in_the_docs_was_recorded_by_this_version():
    """docs/guide/cli.md's session is written by tools/cli_session.py; rerun it when the version changes."""
    from loomnet import __version__

    page = (ROOT / "docs" / "guide" / "cli.md").read_text()
    session = page.split("<!-- cli-session:start -->")[1].split("<!-- cli-session:end -->")[0]
    assert f"written by loomnet {__version__} at" in session, "rerun: python tools/cli_session.py"
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_session", ROOT / "tools" / "cli_session.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert re.findall(r"^\$ (.*)$", session, re.M) == script.COMMANDS
