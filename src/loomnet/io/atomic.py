"""Atomic file writes: a crash or kill leaves either the old file or the new one, never half."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "is_special_file"]


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old file or the new one, never half.

    The bytes go to a temporary file in the same directory, are fsynced, then renamed over
    ``path`` (rename is atomic within a filesystem); the directory is fsynced so the rename lasts.
    """
    path = Path(path)
    if is_special_file(path):  # /dev/null, a FIFO: write into it; renaming would replace the device
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise _write_error(path, exc) from None
        return
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.fchmod(fd, _new_file_mode(path))  # mkstemp makes 0600; a model file gets the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):  # disk full, read-only...: name the file we failed to write
            raise _write_error(path, exc) from None
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def is_special_file(path: str | os.PathLike) -> bool:
    """True for an existing device, FIFO or socket: targets to write into, never to rename over."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _write_error(path: Path, exc: OSError) -> OSError:
    """The same OSError (same errno and subclass), naming the file being written rather than a temp file."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _new_file_mode(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets 0666 minus the umask, like open() would give."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (os.umask sets it, racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask
