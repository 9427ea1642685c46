"""Run the loomnet CLI and SIGKILL it from inside at a chosen file-system call.

``LOOMNET_KILL_AT=fsync:3`` kills the process as it enters its 3rd ``os.fsync`` (for a checkpoint:
the temporary file is written but not yet durable or renamed); ``replace:2`` as it enters its 2nd
``os.replace`` (the temporary file is complete, the rename not done); ``write:N`` half-way
through the N-th write into a file under ``--checkpoint-dir``. Without the variable it just runs
the CLI. ``LOOMNET_FAIL_AT`` injects an OSError instead (see ``arm_failure``). Used by
test_crash_safety.py and test_disk_full.py as ``python killer.py train ...``.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _Countdown:
    def __init__(self, n: int):
        self.left = n

    def tick(self) -> None:
        self.left -= 1
        if self.left <= 0:
            die()


def _killing_writer(handle: io.BufferedWriter, countdown: _Countdown) -> io.BufferedWriter:
    class KillingWriter(io.BufferedWriter):
        def write(self, data):  # half of the data reaches the file, then the process dies
            view = memoryview(data).cast("B")
            half = max(1, len(view) // 2)
            super().write(view[:half])
            self.flush()
            countdown.tick()
            return half + super().write(view[half:])

    return KillingWriter(handle.detach())


def arm(plan: str, watched_dir: str | None) -> None:
    kind, _, count = plan.partition(":")
    countdown = _Countdown(int(count))
    if kind in ("fsync", "replace"):
        original = getattr(os, kind)

        def patched(*args, **kwargs):
            countdown.tick()
            return original(*args, **kwargs)

        setattr(os, kind, patched)
        return
    if kind != "write":
        raise SystemExit(f"unknown kill plan {plan!r}")
    watched = os.path.realpath(watched_dir or ".")

    def inside(path: str) -> bool:
        return os.path.realpath(path).startswith(watched + os.sep)

    def wrap(handle, path: str, mode: str):
        if "b" in mode and any(m in mode for m in "wax") and isinstance(handle, io.BufferedWriter) and inside(path):
            return _killing_writer(handle, countdown)
        return handle

    original_open, original_fdopen = builtins.open, os.fdopen

    def patched_open(file, mode="r", *args, **kwargs):
        handle = original_open(file, mode, *args, **kwargs)
        return wrap(handle, os.fspath(file), mode) if isinstance(file, str | os.PathLike) else handle

    def patched_fdopen(fd, mode="r", *args, **kwargs):
        handle = original_fdopen(fd, mode, *args, **kwargs)
        return wrap(handle, os.readlink(f"/proc/self/fd/{fd}"), mode)

    builtins.open, os.fdopen = patched_open, patched_fdopen


def arm_failure(plan: str) -> None:
    """``LOOMNET_FAIL_AT=fsync:2:ENOSPC``: the 2nd ``os.fsync`` raises OSError(ENOSPC) instead of syncing."""
    call, count, code = plan.split(":")
    original = getattr(os, call)
    calls = [0]

    def patched(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(count):
            number = getattr(errno, code)
            raise OSError(number, os.strerror(number))
        return original(*args, **kwargs)

    setattr(os, call, patched)


if __name__ == "__main__":
    plan = os.environ.get("LOOMNET_KILL_AT")
    argv = sys.argv[1:]
    if plan:
        arm(plan, argv[argv.index("--checkpoint-dir") + 1] if "--checkpoint-dir" in argv else None)
    if os.environ.get("LOOMNET_FAIL_AT"):
        arm_failure(os.environ["LOOMNET_FAIL_AT"])
    from loomnet.cli import main

    sys.exit(main(argv))
