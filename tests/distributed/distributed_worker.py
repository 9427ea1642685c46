"""Runs under ``mpiexec -n K python tests/distributed_worker.py SCENARIO OUT_DIR``; rank 0 writes results.

The scenarios are the ones tests/test_distributed.py compares with one process. Kept in one
file so that one mpiexec launch covers many comparisons (a launch costs about a second).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys

import numpy as np

from loomnet.distributed import DistributedTrainer, get_collective
from loomnet.distributed.runner import MPIRunner

sys.path.insert(0, os.path.dirname(__file__))
from distributed_cases import CASES, RESUME_CASE, make_data, make_model  # noqa: E402


def compare(out_dir: str, collective) -> None:
    """Every case in CASES, plus a checkpoint written half-way and a resume from the one-process checkpoint."""
    results = {}
    for name, case in CASES.items():
        model = make_model(**case["model"])
        X, y = make_data(out_dir, case)
        history = DistributedTrainer(model, X, y, comm=collective, **case["train"]).run()
        results[name] = (model.params.copy(), history.to_dict())
    case = CASES[RESUME_CASE]
    model = make_model(**case["model"])
    X, y = make_data(out_dir, case)
    half = dict(case["train"], epochs=case["train"]["epochs"] // 2)
    trainer = DistributedTrainer(model, X, y, comm=collective, **half)
    trainer.run()
    results["checkpoint"] = (model.params.copy(), trainer.state_dict(), model.get_config())
    with open(os.path.join(out_dir, "serial_checkpoint.pkl"), "rb") as f:
        params, state = pickle.load(f)
    model = make_model(**case["model"])
    trainer = DistributedTrainer(model, X, y, comm=collective, **case["train"])
    model.set_params(params)
    trainer.load_state_dict(state)
    history = trainer.run()
    results["resumed"] = (model.params.copy(), history.to_dict())
    if collective.rank == 0:
        with open(os.path.join(out_dir, f"results_{collective.size}.pkl"), "wb") as f:
            pickle.dump(results, f)


class FailingRunner(MPIRunner):
    """Rank 1 fails at the third step of the second epoch: raises, dies, stops (SIGSTOP) or drifts."""

    how = "raise"

    def gradient(self, step, batch, lane, update):
        if self.collective.rank == 1 and (batch.epoch, batch.step) == (1, 2):
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.how == "stall":
                os.kill(os.getpid(), signal.SIGSTOP)
            if self.how == "drift":
                step.model.params[0] += 1e-3  # as a callback changing the weights on one rank would
                return super().gradient(step, batch, lane, update)
            raise ValueError("injected failure on rank 1")
        return super().gradient(step, batch, lane, update)


def fault(out_dir: str, collective, how: str) -> None:
    case = CASES["default"]
    X, y = make_data(out_dir, case)
    if how == "bad_shard":
        X = np.array(np.load(X) if isinstance(X, str) else X, dtype=np.float64)
        X[-1, 0] = np.nan  # in the last shard: rank 1's
        DistributedTrainer(make_model(**case["model"]), X, y, comm=collective, epochs=1)
        return
    FailingRunner.how = how
    timeout = 2.0 if how == "stall" else None
    DistributedTrainer(make_model(**case["model"]), X, y, comm=collective, timeout=timeout, runner_class=FailingRunner,
                       **dict(case["train"], epochs=50)).run()


def tiny(out_dir: str, collective) -> None:
    """More ranks than some shards have rows, and ranks with no validation rows."""
    from distributed_cases import tiny_run

    params = tiny_run(collective)
    if collective.rank == 0:
        np.save(os.path.join(out_dir, f"tiny_{collective.size}.npy"), params)


def shards(out_dir: str, collective) -> None:
    """Each rank trains from a lazily encoded CSV and reports how many encoded rows it holds."""
    from loomnet import Dense, Sequential
    from loomnet.io.tables import open_training_table

    _, table, y = open_training_table(os.path.join(out_dir, "shards.csv"), "y", chunk_rows=50)
    model = Sequential([Dense(8, "relu"), Dense(2)], seed=0)
    trainer = DistributedTrainer(model, table, y, comm=collective, epochs=2, batch_size=40, validation_split=0.2)
    trainer.run()
    held = collective.allgather((len(trainer.X), len(trainer.val[0]) if trainer.val else 0))
    if collective.rank == 0:
        np.save(os.path.join(out_dir, "shards.npy"), np.array(held))
        np.save(os.path.join(out_dir, "shards_params.npy"), model.params)


if __name__ == "__main__":
    scenario, out = sys.argv[1], sys.argv[2]
    world = get_collective()
    if scenario == "compare":
        compare(out, world)
    elif scenario == "tiny":
        tiny(out, world)
    elif scenario == "shards":
        shards(out, world)
    else:
        fault(out, world, scenario)
