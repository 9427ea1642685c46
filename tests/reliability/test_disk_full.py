"""Disk full and read-only output: the failed write is reported in one line, training stops with
exit code 2, the previous checkpoint is untouched, no temporary file is left, and ``--resume``
(once there is space again) finishes with the same model as an uninterrupted run.

The injected-fault tests run everywhere; the real-filesystem tests mount a small tmpfs (and
remount it read-only), so they need root and are skipped without it.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("loomnet.cli")

from loomnet.io.checkpoint import read_checkpoint  # noqa: E402
from loomnet.io.modelfile import load_model  # noqa: E402

KILLER = Path(__file__).with_name("killer.py")
TRAIN = ["train", "builtin:digits", "--hidden", "32", "--epochs", "30", "--batch-size", "8", "--seed", "3",
         "--no-plot", "--quiet"]


def train(workdir: Path, *args: str, env: dict | None = None, background: bool = False):
    argv = [sys.executable, str(KILLER), *TRAIN, *args]
    proc = subprocess.Popen(argv, cwd=workdir, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if background:
        return proc
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def error_line(err: str) -> str:
    """The last stderr line, which must be the one-line error (warnings may precede it)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and "Traceback" not in err, err
    return lines[-1]


@pytest.fixture(scope="module")
def reference_params(tmp_path_factory) -> bytes:
    workdir = tmp_path_factory.mktemp("reference")
    rc, err = train(workdir, "--out", "model.loom")
    assert rc == 0, err
    return load_model(workdir / "model.loom").params.tobytes()


def assert_intact_and_resumable(workdir: Path, ckpt_dir: Path, reference_params: bytes) -> None:
    header, _ = read_checkpoint(ckpt_dir / "checkpoint.loom")
    assert header["trainer"]["epoch"] >= 1
    assert not list(ckpt_dir.glob("*.tmp")), "a temporary file was left behind"
    rc, err = train(workdir, "--out", "model.loom", "--checkpoint-dir", str(ckpt_dir), "--resume")
    assert rc == 0, err
    assert load_model(workdir / "model.loom").params.tobytes() == reference_params


# ----------------------------------------------------------------- injected faults (any machine)
@pytest.mark.timeout(180)
@pytest.mark.parametrize("code", ["ENOSPC", "EROFS", "EDQUOT"])
def test_a_checkpoint_write_that_fails_stops_training_and_keeps_the_previous_checkpoint(
        tmp_path, reference_params, code):
    ckpt = tmp_path / "ckpt"
    rc, err = train(tmp_path, "--out", "model.loom", "--checkpoint-dir", str(ckpt),
                    env={"LOOMNET_FAIL_AT": f"fsync:3:{code}"})  # fsync 1: checkpoint 1, 2: its directory
    line = error_line(err)
    assert rc == 2, err
    assert line.startswith("error:") and "checkpoint.loom" in line and os.strerror(getattr(errno, code)) in line, line
    assert not (tmp_path / "model.loom").exists()
    assert_intact_and_resumable(tmp_path, ckpt, reference_params)


@pytest.mark.timeout(180)
def test_a_model_write_that_fails_leaves_no_partial_model_file(tmp_path):
    rc, err = train(tmp_path, "--epochs", "2", "--out", "model.loom", env={"LOOMNET_FAIL_AT": "fsync:1:ENOSPC"})
    line = error_line(err)
    assert rc == 2 and "model.loom" in line and "No space left" in line, err
    assert not list(tmp_path.iterdir()), f"left behind: {list(tmp_path.iterdir())}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("option", ["--out", "--checkpoint-dir"])
def test_an_unwritable_output_path_is_refused_before_training(tmp_path, option):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    start = time.perf_counter()
    rc, err = train(tmp_path, option, str(blocker / "sub" / "x"), *(["--out", "m.loom"] if option != "--out" else []),
                    "--epochs", "500")
    assert rc == 2 and error_line(err).startswith("error:") and err.count("\n") == 1, err
    assert time.perf_counter() - start < 20, "the output path should be checked before training starts"


# ----------------------------------------------------------------- a real small filesystem (root)
@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 KiB tmpfs mounted under tmp_path; skipped where mounting is not allowed."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended before writing {path}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def fill(directory: Path, leave: int = 0) -> Path:
    """Write zeros until the filesystem has at most ``leave`` bytes free; return the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize > leave:
            try:
                os.write(fd, bytes(4096))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    finally:
        os.close(fd)
    return filler


@pytest.mark.timeout(180)
def test_a_full_tmpfs_stops_training_and_resume_finishes_after_space_is_freed(
        tmp_path, small_tmpfs, reference_params):
    ckpt = small_tmpfs / "ckpt"
    proc = train(tmp_path, "--out", "model.loom", "--checkpoint-dir", str(ckpt), background=True)
    wait_for(ckpt / "checkpoint.loom", proc)
    filler = fill(small_tmpfs)
    rc, err = finish(proc)
    line = error_line(err)
    assert rc == 2 and "No space left on device" in line and "checkpoint.loom" in line, err
    filler.unlink()
    assert_intact_and_resumable(tmp_path, ckpt, reference_params)


@pytest.mark.timeout(180)
def test_a_full_tmpfs_for_the_model_file_is_reported_and_leaves_nothing_half_written(tmp_path, small_tmpfs):
    fill(small_tmpfs, leave=8192)  # room for the up-front check, not for a 30 KB model
    rc, err = train(tmp_path, "--epochs", "2", "--out", str(small_tmpfs / "model.loom"))
    assert rc == 2 and "No space left on device" in error_line(err), err
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler"]


@pytest.mark.timeout(180)
def test_a_filesystem_turned_read_only_mid_run_keeps_the_checkpoint(tmp_path, small_tmpfs, reference_params):
    ckpt = small_tmpfs / "ckpt"
    proc = train(tmp_path, "--out", "model.loom", "--checkpoint-dir", str(ckpt), background=True)
    wait_for(ckpt / "checkpoint.loom", proc)
    for _ in range(200):  # remounting fails with EBUSY while a file is open for writing: try again
        if subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], capture_output=True).returncode == 0:
            break
        time.sleep(0.005)
    else:
        pytest.fail("could not remount the tmpfs read-only")
    rc, err = finish(proc)
    line = error_line(err)
    assert rc == 2 and "Read-only file system" in line, err
    subprocess.run(["mount", "-o", "remount,rw", str(small_tmpfs)], check=True)
    assert_intact_and_resumable(tmp_path, ckpt, reference_params)
