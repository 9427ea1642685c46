"""Crash safety: SIGKILL ``loomnet train --checkpoint-dir`` at random moments, resume, compare.

Twenty kills (CI; more under the ``slow`` marker): half at random times (mostly in the middle of
a step), half inside a checkpoint write (half-way through writing the temporary file, before
its fsync, before its rename: see killer.py). After every kill, whatever is in the checkpoint
directory under the checkpoint's name must load, ``--resume`` must carry on from it, and every
run that reaches the end must save a model whose parameters and loss history equal the
uninterrupted run's bit for bit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("loomnet.cli")

from loomnet.io.checkpoint import read_checkpoint  # noqa: E402
from loomnet.io.modelfile import load_model  # noqa: E402

KILLER = Path(__file__).with_name("killer.py")
TRAIN = ["train", "builtin:digits", "--hidden", "64,32", "--dropout", "0.1", "--epochs", "30", "--batch-size", "16",
         "--early-stopping", "50", "--seed", "7", "--no-plot", "--quiet", "--checkpoint-every", "1"]


def run_train(workdir: Path, *, resume: bool, kill_at: str | None = None, kill_after: float | None = None,
              extra: tuple[str, ...] = ()) -> tuple[int, str]:
    """One `loomnet train` process in ``workdir``; returns (exit code, stderr). -9 means it was killed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LOOMNET_KILL_AT", None)
    if kill_at:
        env["LOOMNET_KILL_AT"] = kill_at
    argv = [sys.executable, str(KILLER), *TRAIN, "--out", "model.loom", "--checkpoint-dir", "ckpt", *extra]
    if resume:
        argv.append("--resume")
    proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def fingerprint(path: Path) -> tuple[bytes, list[float], list[float]]:
    model = load_model(path)
    losses = [r["loss"] for r in model.history.records]
    val_losses = [r.get("val_loss") for r in model.history.records]
    return model.params.tobytes(), losses, val_losses


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[tuple, float]:
    """The uninterrupted run: its model's fingerprint and its wall time."""
    workdir = tmp_path_factory.mktemp("reference")
    start = time.perf_counter()
    rc, err = run_train(workdir, resume=False)
    elapsed = time.perf_counter() - start
    assert rc == 0, err
    return fingerprint(workdir / "model.loom"), elapsed


def kill_plans(n: int, seed: int, run_seconds: float) -> list[tuple[str | None, float | None]]:
    """Alternate random-time kills with kills inside checkpoint writes (fsync, rename, half-written file)."""
    rng = np.random.default_rng(seed)
    plans = []
    for i in range(n):
        if i % 2 == 0:
            plans.append((None, float(rng.uniform(0.15, 0.6) * run_seconds)))
        else:
            kind = ["write", "fsync", "replace"][(i // 2) % 3]
            plans.append((f"{kind}:{int(rng.integers(1, 6))}", None))
    return plans


def crash_campaign(tmp_path: Path, reference, n_kills: int, seed: int, extra: tuple[str, ...] = ()) -> dict:
    expected, run_seconds = reference
    workdir = tmp_path / "run"
    workdir.mkdir()
    stats = {"kills": 0, "resumes": 0, "completed": 0, "valid_checkpoints_seen": 0, "stale_tmp_files": 0}
    for kill_at, kill_after in kill_plans(3 * n_kills, seed, run_seconds):  # runs that finish first don't count
        if stats["kills"] == n_kills:
            break
        checkpoint = workdir / "ckpt" / "checkpoint.loom"
        resume = checkpoint.exists()
        rc, err = run_train(workdir, resume=resume, kill_at=kill_at, kill_after=kill_after, extra=extra)
        stats["resumes"] += resume
        plan = kill_at or f"after {kill_after:.2f}s"
        assert rc in (0, -signal.SIGKILL), f"run ({plan}, resume={resume}) failed with {rc}: {err}"
        if checkpoint.exists():
            read_checkpoint(checkpoint)  # raises if a kill left a damaged checkpoint under its real name
            stats["valid_checkpoints_seen"] += 1
        if (workdir / "model.loom").exists():
            load_model(workdir / "model.loom")  # a model file is complete or absent, never half-written
        if rc == 0:
            assert fingerprint(workdir / "model.loom") == expected, f"resumed run differs from the reference ({plan})"
            stats["completed"] += 1
            shutil.rmtree(workdir)
            workdir.mkdir()
        else:
            stats["kills"] += 1
            stats["stale_tmp_files"] = max(stats["stale_tmp_files"], len(list((workdir / "ckpt").glob("*.tmp")))
                                           if (workdir / "ckpt").exists() else 0)
    resume = (workdir / "ckpt" / "checkpoint.loom").exists()
    rc, err = run_train(workdir, resume=resume, extra=extra)
    assert rc == 0, err
    assert fingerprint(workdir / "model.loom") == expected, "the final resumed model differs from the reference"
    assert not list((workdir / "ckpt").glob("*.tmp")), "temporary files of killed writes outlived a good checkpoint"
    stats["completed"] += 1
    return stats


@pytest.mark.timeout(540)
def test_twenty_sigkills_then_resume_give_the_uninterrupted_model_bit_for_bit(tmp_path, reference):
    stats = crash_campaign(tmp_path, reference, 20, seed=int(os.environ.get("LOOMNET_CRASH_SEED", 2026)))
    print(f"\ncrash campaign: {stats}")
    assert stats["kills"] == 20, stats
    assert stats["resumes"] >= 10, stats


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_hundred_sigkills_per_seed_then_resume(tmp_path, reference, seed):
    stats = crash_campaign(tmp_path, reference, 100, seed=seed)
    print(f"\ncrash campaign seed {seed}: {stats}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_sigkills_with_two_synchronous_worker_threads_then_resume(tmp_path):
    """The same campaign with --workers 2 --mode sync: kills land while worker threads compute."""
    threaded = ("--workers", "2", "--mode", "sync")
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    start = time.perf_counter()
    rc, err = run_train(reference_dir, resume=False, extra=threaded)
    assert rc == 0, err
    reference = (fingerprint(reference_dir / "model.loom"), time.perf_counter() - start)
    stats = crash_campaign(tmp_path, reference, 40, seed=11, extra=threaded)
    print(f"\ncrash campaign, 2 sync workers: {stats}")


@pytest.mark.timeout(120)
def test_resume_without_a_checkpoint_is_refused_in_one_line(tmp_path):
    rc, err = run_train(tmp_path, resume=True)
    assert rc == 2 and err.startswith("error:") and err.count("\n") == 1, err


@pytest.mark.timeout(120)
def test_resume_with_different_options_is_refused_in_one_line(tmp_path, reference):
    rc, err = run_train(tmp_path, resume=False, kill_at="replace:3")
    assert rc == -signal.SIGKILL
    rc, err = run_train(tmp_path, resume=True, extra=("--seed", "8"))
    assert rc == 2 and "seed" in err and err.count("\n") == 1, err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("damage", ["flip a weight byte", "truncate", "a model file instead"])
def test_resume_from_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, damage):
    rc, _ = run_train(tmp_path, resume=False, kill_at="replace:3")
    assert rc == -signal.SIGKILL
    checkpoint = tmp_path / "ckpt" / "checkpoint.loom"
    blob = bytearray(checkpoint.read_bytes())
    if damage == "flip a weight byte":
        blob[-5] ^= 0x01
        checkpoint.write_bytes(bytes(blob))
    elif damage == "truncate":
        checkpoint.write_bytes(bytes(blob[: len(blob) // 2]))
    else:
        from loomnet import Dense, Sequential
        from loomnet.io.modelfile import save_model

        model = Sequential([Dense(2)])
        model.fit([[0.0], [1.0]], [0, 1], epochs=1)
        save_model(model, checkpoint)
    rc, err = run_train(tmp_path, resume=True)
    assert rc == 2 and err.startswith("error:") and "checkpoint.loom" in err and err.count("\n") == 1, err
