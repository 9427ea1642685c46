"""Data-parallel training over MPI ranks (loomnet.distributed) against the one-process result.

The 2-rank runs go through ``mpiexec -n 2`` from the same environment as mpi4py; they are
skipped, with the reason, only where mpi4py or its MPI library cannot be loaded.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from loomnet import datasets
from loomnet.distributed import DistributedTrainer, SerialCollective, mpi_available
from loomnet.distributed.comm import plan_threads
from loomnet.distributed.data import ShardPlan
from loomnet.training import Trainer

sys.path.insert(0, os.path.dirname(__file__))
from distributed_cases import CASES, RESUME_CASE, make_data, make_model, tiny_run  # noqa: E402

WORKER = Path(__file__).with_name("distributed_worker.py")


def _mpiexec() -> str | None:
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _skip_reason() -> str | None:
    ok, why = mpi_available()
    if not ok:
        return f"MPI is not installed here: {why}"
    if _mpiexec() is None:
        return "mpi4py imports but no mpiexec launcher was found next to the Python interpreter or on PATH"
    return None


needs_mpi = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def launch(ranks: int, scenario: str, out_dir: Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    make_data(str(out_dir), CASES["default"])  # the memory-mapped .npy, written before any rank reads it
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, str(WORKER), scenario, str(out_dir)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - start


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def serial_run(name: str, *, plain: bool = False, **overrides):
    case = CASES[name]
    model = make_model(**case["model"])
    data = datasets.load("digits")
    train = dict(case["train"], **overrides)
    if plain:
        train = {k: v for k, v in train.items() if k not in ("deterministic", "micro_batches")}
        history = Trainer(model, data.X, data.y, **train).run()
    else:
        history = DistributedTrainer(model, data.X, data.y, comm="serial", **train).run()
    return model, history


# ----------------------------------------------------------------- one process (no MPI needed)
def test_one_shard_deterministic_run_is_bit_identical_to_plain_trainer():
    plain_model, plain = serial_run("deterministic", plain=True)
    model, hist = serial_run("deterministic", micro_batches=1)
    assert np.array_equal(model.params, plain_model.params)
    assert hist["loss"] == plain["loss"]


def test_one_shard_deterministic_run_with_momentum_sgd_is_bit_identical_to_plain_trainer():
    """SGD takes lr·g from the backward pass in both loops: the same bits, L2 and dropout on."""
    from loomnet.engine.optimizers import SGD

    data = datasets.load("digits")
    train = {"epochs": 2, "batch_size": 64, "seed": 3}
    models = [make_model(dropout=0.2, optimizer=SGD(0.05, momentum=0.9), l2=1e-3) for _ in range(2)]
    Trainer(models[0], data.X, data.y, **train).run()
    DistributedTrainer(models[1], data.X, data.y, comm="serial", deterministic=True, micro_batches=1, **train).run()
    assert np.array_equal(models[1].params, models[0].params)


@pytest.mark.parametrize("threads", [1, 2])
def test_deterministic_result_does_not_depend_on_threads(threads):
    reference, _ = serial_run("deterministic")
    model, _ = serial_run("deterministic", threads=threads, blas_threads=1)
    assert np.array_equal(model.params, reference.params)


def test_default_mode_in_one_process_matches_plain_trainer_within_1e_6():
    plain_model, plain = serial_run("default", plain=True)
    model, hist = serial_run("default")
    assert rel_diff(model.params, plain_model.params) <= 1e-6
    assert hist.stop_reason == plain.stop_reason and len(hist) == len(plain)


def test_default_mode_with_threads_matches_one_thread_within_1e_6():
    one, _ = serial_run("default")
    two, _ = serial_run("default", threads=2, blas_threads=1)
    assert rel_diff(two.params, one.params) <= 1e-6


def test_shards_cover_rows_once_in_order_for_any_rank_count():
    for ranks in (1, 2, 3, 5):
        plans = [ShardPlan.make(103, 5, r, ranks) for r in range(ranks)]
        starts = [p.row_start for p in plans] + [plans[-1].row_stop]
        assert starts == sorted(starts) and starts[0] == 0 and starts[-1] == 103
        assert sum(p.shards_per_rank[r] for r, p in enumerate(plans)) == 5
    with pytest.raises(ValueError, match="micro_batches=2 must be >= the number of ranks"):
        ShardPlan.make(10, 2, 0, 3)


def test_threads_beyond_the_cores_are_refused_with_the_numbers():
    class EightRanks(SerialCollective):
        local_size = 8

    with pytest.raises(ValueError, match=r"8 ranks on this node × 2 threads = 16 exceeds"):
        plan_threads(EightRanks(), threads=2, blas_threads=None)
    assert plan_threads(SerialCollective(), threads=1, blas_threads=None) >= 1


# ----------------------------------------------------------------- 2 ranks under mpiexec
@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    case = CASES[RESUME_CASE]
    model = make_model(**case["model"])
    X, y = make_data(str(out), case)
    trainer = DistributedTrainer(model, X, y, comm="serial", **dict(case["train"], epochs=case["train"]["epochs"] // 2))
    trainer.run()
    with open(out / "serial_checkpoint.pkl", "wb") as f:
        pickle.dump((model.params.copy(), trainer.state_dict()), f)
    proc, _ = launch(2, "compare", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "results_2.pkl", "rb") as f:
        return pickle.load(f)


@needs_mpi
@pytest.mark.timeout(240)
def test_two_ranks_match_one_process_within_1e_6(two_rank_results):
    params, history = two_rank_results["default"]
    plain_model, plain = serial_run("default", plain=True)
    assert rel_diff(params, plain_model.params) <= 1e-6
    assert history["stop_reason"] == plain.stop_reason == "early_stopping"
    assert history["best_epoch"] == plain.best_epoch < len(history["records"])  # best weights restored
    assert np.allclose([r["val_loss"] for r in history["records"]], plain["val_loss"], rtol=1e-6)


@needs_mpi
@pytest.mark.timeout(240)
def test_two_ranks_deterministic_reduction_is_bit_identical_to_one_process(two_rank_results):
    params, history = two_rank_results["deterministic"]
    model, serial = serial_run("deterministic")
    assert np.array_equal(params, model.params)
    assert [r["loss"] for r in history["records"]] == serial["loss"]


@needs_mpi
@pytest.mark.timeout(240)
def test_two_ranks_with_batch_norm_agree_with_one_process(two_rank_results):
    """Batch statistics come from the fixed shards and the population statistics are summed over the
    ranks (the epoch-end checksum would have failed had the ranks disagreed)."""
    params, history = two_rank_results["batch_norm"]
    model, serial = serial_run("batch_norm")
    assert rel_diff(params, model.params) <= 1e-6
    assert np.allclose([r["val_loss"] for r in history["records"]], serial["val_loss"], rtol=1e-6)


@needs_mpi
@pytest.mark.timeout(240)
def test_two_ranks_stop_together_at_the_loss_threshold(two_rank_results):
    params, history = two_rank_results["threshold"]
    model, serial = serial_run("threshold")
    assert history["stop_reason"] == serial.stop_reason == "loss_threshold"
    assert len(history["records"]) == len(serial) < CASES["threshold"]["train"]["epochs"]
    assert rel_diff(params, model.params) <= 1e-6


@needs_mpi
@pytest.mark.timeout(240)
def test_checkpoint_resumes_bit_for_bit_on_a_different_number_of_ranks(two_rank_results):
    full, _ = serial_run(RESUME_CASE)
    resumed_on_two, _ = two_rank_results["resumed"]  # 1-rank checkpoint, finished on 2 ranks
    assert np.array_equal(resumed_on_two, full.params)
    params, state, _ = two_rank_results["checkpoint"]  # 2-rank checkpoint, finished in 1 process
    case = CASES[RESUME_CASE]
    model = make_model(**case["model"])
    data = datasets.load("digits")
    trainer = DistributedTrainer(model, data.X, data.y, comm="serial", **case["train"])
    model.set_params(params)
    trainer.load_state_dict(state)
    trainer.run()
    assert np.array_equal(model.params, full.params)


@needs_mpi
@pytest.mark.timeout(120)
def test_three_ranks_with_empty_shards_give_the_one_process_bits(tmp_path):
    proc, _ = launch(3, "tiny", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert np.array_equal(np.load(tmp_path / "tiny_3.npy"), tiny_run("serial"))


@needs_mpi
@pytest.mark.timeout(120)
@pytest.mark.parametrize("how, message", [
    ("raise", "rank 1 of 2 failed with ValueError: injected failure on rank 1; aborting all ranks"),
    ("kill", "BAD TERMINATION"),
    ("bad_shard", "ValueError: loading the data shards failed on 1 of 2 ranks: rank 1: ValueError: X contains "
                  "NaN or infinity (first at row 1796, column 0"),
    ("stall", "rank 0 of 2 waited 2 s for the other ranks in Allreduce; one of them is stuck"),
    ("drift", "RuntimeError: the ranks' parameters differ after epoch 2"),
])
def test_a_failing_rank_ends_the_job_quickly_with_a_clear_message(tmp_path, how, message):
    proc, seconds = launch(2, how, tmp_path, timeout=90)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert seconds < 30


# ----------------------------------------------------------------- the command line
def _loomnet(*args: str, ranks: int | None = None, cwd: Path) -> subprocess.CompletedProcess:
    cli = [sys.executable, "-m", "loomnet", "train", "builtin:digits", "--no-plot", "--quiet", "--recipe", "none",
           *args]
    cmd = cli if ranks is None else [_mpiexec(), "-n", str(ranks), *cli]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@needs_mpi
@pytest.mark.timeout(240)
def test_cli_two_ranks_write_once_and_resume_in_one_process_bit_for_bit(tmp_path):
    from loomnet.io.modelfile import load_model

    common = ("--distributed", "mpi", "--deterministic", "--checkpoint-dir", "ckpt")
    two = _loomnet(*common, "--epochs", "2", "-o", "half.loom", ranks=2, cwd=tmp_path)
    assert two.stdout.count("saved half.loom") == 1  # rank 0 alone reports and writes
    _loomnet(*common, "--epochs", "4", "--resume", "-o", "resumed.loom", cwd=tmp_path)
    _loomnet("--distributed", "mpi", "--deterministic", "--epochs", "4", "-o", "full.loom", cwd=tmp_path)
    resumed, full = load_model(tmp_path / "resumed.loom"), load_model(tmp_path / "full.loom")
    assert np.array_equal(resumed.params, full.params)


@needs_mpi
@pytest.mark.timeout(240)
def test_cli_two_ranks_match_the_one_process_command_within_1e_6(tmp_path):
    from loomnet.io.modelfile import load_model

    _loomnet("--distributed", "mpi", "--epochs", "3", "-o", "two.loom", ranks=2, cwd=tmp_path)
    _loomnet("--epochs", "3", "-o", "one.loom", cwd=tmp_path)
    two, one = load_model(tmp_path / "two.loom"), load_model(tmp_path / "one.loom")
    assert rel_diff(two.params, one.params) <= 1e-6


# ----------------------------------------------------------------- model search on MPI workers
@needs_mpi
@pytest.mark.timeout(240)
def test_grid_search_on_mpi_workers_scores_like_the_thread_pool(tmp_path):
    import json

    script = Path(__file__).with_name("distributed_search_script.py")
    cmd = [_mpiexec(), "-n", "3", sys.executable, "-m", "mpi4py.futures", str(script), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = json.loads((tmp_path / "search.json").read_text())
    assert len(found["mpi"]) == 8 and found["mpi"] == found["threads"]


@needs_mpi
@pytest.mark.timeout(120)
def test_a_failing_search_job_on_an_mpi_worker_reaches_the_caller():
    # The job runner is pow(job, X, y): pow(2, 3, 0) raises ValueError in the spawned worker.
    code = ("from loomnet.search.mpi import run_jobs_mpi\n"
            "try:\n"
            "    run_jobs_mpi(pow, [2], 3, 0, n_jobs=1)\n"
            "except ValueError as exc:\n"
            "    print('caught:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert "caught: pow() 3rd argument cannot be 0" in proc.stdout, proc.stdout + proc.stderr


@needs_mpi
@pytest.mark.timeout(240)
def test_cli_hybrid_workers_keep_the_deterministic_bits(tmp_path):
    from loomnet.io.modelfile import load_model

    common = ("--distributed", "mpi", "--deterministic", "--epochs", "2")
    _loomnet(*common, "--workers", "2", "-o", "threads.loom", cwd=tmp_path)
    _loomnet(*common, "-o", "one.loom", cwd=tmp_path)
    threads, one = load_model(tmp_path / "threads.loom"), load_model(tmp_path / "one.loom")
    assert np.array_equal(threads.params, one.params)


@needs_mpi
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("ranks", [4, 8])
def test_many_oversubscribed_ranks_give_the_one_process_bits(tmp_path, ranks):
    proc, _ = launch(ranks, "tiny", tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert np.array_equal(np.load(tmp_path / f"tiny_{ranks}.npy"), tiny_run("serial"))


@needs_mpi
@pytest.mark.timeout(120)
def test_each_rank_encodes_only_its_shard_of_a_csv(tmp_path):
    """`loomnet train --distributed mpi` reads a CSV through data_io.open_training_table: each rank keeps
    the encoded rows of its own shard (and its part of the validation rows), never the whole matrix."""
    rng = np.random.default_rng(0)
    rows = ["a,b,colour,y"] + [f"{rng.normal():.4f},{rng.normal():.4f},{'rgb'[i % 3]},{i % 2}" for i in range(400)]
    (tmp_path / "shards.csv").write_text("\n".join(rows) + "\n")
    proc, _ = launch(2, "shards", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    held = np.load(tmp_path / "shards.npy")
    assert held[:, 0].sum() == 320 and held[:, 1].sum() == 80  # 20 % validation split of 400 rows
    assert (held[:, 0] < 320).all() and (held[:, 0] > 0).all()  # no rank holds every training row
    assert np.isfinite(np.load(tmp_path / "shards_params.npy")).all()
