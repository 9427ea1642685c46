"""The ``loomnet`` command: a registry of subcommands, one module each, behind one error policy.

Adding a subcommand: write a module with ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args, out) -> int`` (``out`` is an :class:`Output`), and add one line to ``COMMANDS``
(or call :func:`register_command` before :func:`main`). Modules are imported only when their
command runs, so a slow import never slows the others down.

Exit codes: 0 success; 2 a user mistake (bad option, missing file, data that does not fit the
model...), printed as one line ``error: ...`` on stderr with no traceback; 1 an internal
failure (set ``LOOMNET_DEBUG=1`` for its traceback); 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

COMMANDS: dict[str, str] = {
    "train": "loomnet.cli.commands.train",
    "evaluate": "loomnet.cli.commands.evaluate",
    "predict": "loomnet.cli.commands.predict",
    "inspect": "loomnet.cli.commands.inspect",
    "datasets": "loomnet.cli.commands.datasets",
    "explain": "loomnet.cli.commands.explain",
    "export": "loomnet.cli.commands.export",
}

# Help lines, so `loomnet --help` needs no command module imported.
_HELP = {
    "train": "train a network on CSV, NumPy, Parquet or built-in data and save it as a .loom file",
    "evaluate": "metrics of a saved model on labelled data (and a confusion-matrix PNG)",
    "predict": "predictions of a saved model, read and written in chunks",
    "inspect": "architecture, preprocessing, training history and checksum of a .loom file",
    "datasets": "list the built-in datasets (use them as builtin:NAME)",
    "explain": "which features a saved model relies on (permutation importance, gradient attributions)",
    "export": "write a saved model as ONNX (runs in onnxruntime without loomnet)",
}


# Disk full, quota exceeded, read-only filesystem, file too large, unusable path: not a bug (exit 2).
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.ENAMETOOLONG, errno.ELOOP,
                       errno.ENOTDIR, errno.ENXIO}


class UsageError(Exception):
    """A user mistake the command detected itself: printed as ``error: <message>``, exit 2."""


def register_command(name: str, module: str, help: str | None = None) -> None:
    """Add (or replace) a subcommand implemented by ``module`` (imported when the command runs)."""
    COMMANDS[name] = module
    if help is not None:
        _HELP[name] = help


class Output:
    """Where a command's words go: results to stdout (JSON with ``--json``), progress to stderr."""

    def __init__(self, json_mode: bool = False, quiet: bool = False):
        self.json = json_mode
        self.quiet = quiet

    def progress(self, message: str) -> None:
        """A progress or status line on stderr (stdout stays clean for results), unless ``--quiet``."""
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)

    def result(self, data: dict[str, Any] | list[Any], text: str) -> None:
        """The command's result: ``data`` as JSON with ``--json``, else ``text``."""
        if self.json:
            print(json.dumps(data, indent=2, default=_json_default))
        else:
            print(text)
        sys.stdout.flush()


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one line ``error: ...`` and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable results (JSON) on stdout")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    return common


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only ``command``'s module is imported to add its arguments."""
    from .._version import __version__

    parser = _Parser(prog="loomnet", description="Neural networks on NumPy: train, evaluate, predict, inspect.")
    parser.add_argument("--version", action="version", version=f"loomnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = _common_options()
    for name in COMMANDS:
        sub_parser = sub.add_parser(name, help=_HELP.get(name, ""), description=_HELP.get(name), parents=[common],
                                    formatter_class=_DefaultsFormatter)
        if name == command:  # only the command being run imports its module
            _load(name).add_arguments(sub_parser)
    return parser


class _DefaultsFormatter(argparse.HelpFormatter):
    """``--help`` shows each option's default, unless its help already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is argparse.SUPPRESS or not action.option_strings
                or isinstance(default, bool)):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {shown})"


def _load(name: str) -> Any:
    return importlib.import_module(COMMANDS[name])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``loomnet`` command line and return its exit code.

    Bad input (a missing file, an unknown column, a wrong option) prints one line to stderr and
    returns 2, never a traceback; an internal failure returns 1, Ctrl-C 130.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments after ``loomnet`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad input, 1 for an internal failure, 130 when interrupted.

    Examples
    --------
    >>> from loomnet.cli import main
    >>> main(["datasets"])                          # doctest: +ELLIPSIS
    builtin:digits ... builtin:diabetes ...
    generators take sizes: ...
    0
    >>> main(["train", "no-such-file.csv"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        # argparse (CPython 3.11-3.12) turns a required positional after a second '--' into []
        missing = [name for name, value in vars(args).items() if isinstance(value, list) and not value]
        if missing:
            raise UsageError(f"the argument {missing[0]} is missing (see loomnet {args.command} --help)")
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        out = Output(json_mode=args.json, quiet=args.quiet)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(_load(args.command).run(args, out) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:  # the one place every failure is turned into a message and an exit code
        return _report(exc)


def _report(exc: BaseException) -> int:
    if is_user_error(exc):
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    if os.environ.get("LOOMNET_DEBUG"):
        traceback.print_exc()
    print(f"error: internal error: {type(exc).__name__}: {_one_line(exc)} "
          "(set LOOMNET_DEBUG=1 for the traceback)", file=sys.stderr)
    return 1


def is_user_error(exc: BaseException) -> bool:
    """Mistakes in options, files or data (exit 2) as opposed to bugs (exit 1).

    Validation in the engine raises ValueError with a message naming the bad value, so a
    ValueError from anywhere is the user's data or options; so are missing or unwritable files.
    """
    from ..training import TrainingDivergedError

    user_os_errors = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
    full_or_read_only = isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS
    return full_or_read_only or isinstance(exc, (UsageError, ValueError, TrainingDivergedError, *user_os_errors))


def _one_line(exc: BaseException) -> str:
    text = exc.for_command_line() if hasattr(exc, "for_command_line") else str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split()) or type(exc).__name__


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Library warnings (overfitting, attribution completeness...) as one ``warning: ...`` line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
