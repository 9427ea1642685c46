"""MPI data-parallel benchmark: samples/s on this machine, Allreduce cost, and a scaling estimate.

    .venv/bin/python benchmarks/mpi_scaling.py            # ~1-2 minutes on 2 idle cores
    .venv/bin/python benchmarks/mpi_scaling.py --quick    # fewer epochs and sizes

Measures (1) training samples/s of the benchmark MLP for 1 rank, 2 ranks (``mpiexec -n 2``) and
1 rank × 2 threads, (2) in-place Allreduce time per MB between 2 ranks on loopback (shared
memory), and from those (3) estimates steps/s and speed-up on 8 and 64 machines linked by 10
and 100 Gb/s networks, for the benchmark MLP and a 10× larger one. The child processes unset
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE so OpenBLAS picks its own kernels.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MODELS = {"mlp": (256, 256), "mlp10x": (896, 896)}  # 100 inputs, 10 classes: ~94k and ~900k parameters
N_FEATURES, N_CLASSES, N_SAMPLES, BATCH = 100, 10, 16384, 256


def _build(hidden: tuple[int, ...]):
    from loomnet.engine.layers import Dense
    from loomnet.engine.network import Sequential

    layers = [Dense(width, activation="relu") for width in hidden] + [Dense(N_CLASSES)]
    return Sequential(layers, loss="softmax_cross_entropy", optimizer="adam", seed=0)


def child_train(model_name: str, threads: int, epochs: int) -> dict:
    from loomnet import datasets
    from loomnet.distributed import DistributedTrainer

    data = datasets.make_classification(N_SAMPLES, N_FEATURES, N_CLASSES, seed=0)
    model = _build(MODELS[model_name])
    trainer = DistributedTrainer(model, data.X, data.y, epochs=epochs, batch_size=BATCH, seed=0, threads=threads)
    history = trainer.run()
    rates = history["samples_per_s"][1:] or history["samples_per_s"]  # the first epoch warms up
    return {"ranks": trainer.runner.collective.size, "threads": threads, "blas_threads": trainer.runner.blas_threads,
            "params": int(model.params.size), "samples_per_s": float(np.median(rates)),
            "step_ms": 1000.0 * BATCH / float(np.median(rates))}


def child_allreduce(sizes_mb: list[float], repeats: int) -> dict:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    result = {}
    for mb in [0.0] + sizes_mb:
        buffer = np.ones(max(2, int(mb * 2**20 / 4)), dtype=np.float32)
        comm.Allreduce(MPI.IN_PLACE, buffer)
        comm.Barrier()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buffer)
            times.append(time.perf_counter() - start)
        result[mb] = comm.allreduce(float(np.median(times)), op=MPI.MAX)
    return {"allreduce_s": result}


def launch(ranks: int, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    mpiexec = str(Path(sys.executable).with_name("mpiexec"))
    cmd = [mpiexec, "-n", str(ranks), sys.executable, __file__, "--child", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def allreduce_s(n_bytes: float, machines: int, gbit_s: float, latency_s: float) -> float:
    """Rabenseifner's Allreduce (MPICH's for large messages): reduce-scatter then allgather by halving.

    2·log2(K) messages, and each machine sends and receives 2(K-1)/K · n bytes: α·2log2K + 2(K-1)/K · n/B.
    """
    return 2 * math.log2(machines) * latency_s + 2 * (machines - 1) / machines * n_bytes / (gbit_s * 1e9 / 8)


def estimate(train: list[dict], params: dict[str, int], local_s_per_mb: float) -> list[str]:
    """Speed-up over one machine for a fixed global batch, and for a fixed batch per machine.

    Compute per sample scales with the parameter count (≈ 6 flops per parameter per sample),
    from the benchmark MLP's best configuration on this machine. An Allreduce costs the network
    time plus the memory work measured on loopback (copies and additions, per MB).
    """
    per_machine = max(r["samples_per_s"] for r in train)  # the machine's best configuration
    lines = ["| model | params | network | machines | compute ms per step | Allreduce ms | speed-up, global batch "
             f"{BATCH * 8} | speed-up, {BATCH} per machine |", "|---|---|---|---|---|---|---|---|"]
    for name, n_params in params.items():
        rate = per_machine * params["mlp"] / n_params
        for gbit, latency in ((10, 50e-6), (100, 5e-6)):
            for machines in (8, 64):
                reduce_s = allreduce_s(4 * n_params, machines, gbit, latency) + local_s_per_mb * 4 * n_params / 2**20
                fixed = BATCH * 8 / rate
                strong = fixed / (fixed / machines + reduce_s)
                weak_step = BATCH / rate
                weak = machines * weak_step / (weak_step + reduce_s)
                lines.append(f"| {name} | {n_params:,} | {gbit} Gb/s | {machines} | {1000 * fixed / machines:.2f} | "
                             f"{1000 * reduce_s:.2f} | {strong:.1f}× | {weak:.1f}× |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "train":
            result = child_train(rest[0], int(rest[1]), int(rest[2]))
        else:
            result = child_allreduce([float(s) for s in rest[1:]], int(rest[0]))
        from loomnet.distributed import get_collective

        if get_collective().rank == 0:
            print(json.dumps(result), flush=True)
        return

    epochs = "3" if args.quick else "6"
    runs = [launch(1, "train", "mlp", "1", epochs), launch(2, "train", "mlp", "1", epochs),
            launch(1, "train", "mlp", "2", epochs)]
    big = launch(1, "train", "mlp10x", "1", "2" if args.quick else "3")
    sizes = ["0.25", "1", "4"] if args.quick else ["0.25", "1", "4", "16", "64"]
    reduce = launch(2, "allreduce", "10" if args.quick else "30", *sizes)["allreduce_s"]

    print(f"Benchmark MLP 100-256-256-10 ({runs[0]['params']:,} params), {N_SAMPLES} samples, batch {BATCH}, "
          f"{os.cpu_count()} cores\n")
    print("| configuration | BLAS threads | samples/s | ms per step |\n|---|---|---|---|")
    for r in runs:
        print(f"| {r['ranks']} rank(s) × {r['threads']} thread(s) | {r['blas_threads']} | "
              f"{r['samples_per_s']:,.0f} | {r['step_ms']:.2f} |")
    print(f"| 10× MLP 100-896-896-10 ({big['params']:,} params), 1 rank | {big['blas_threads']} | "
          f"{big['samples_per_s']:,.0f} | {big['step_ms']:.2f} |")
    print("\nIn-place Allreduce, 2 ranks on loopback (float32, median):\n\n| size | time | per MB |\n|---|---|---|")
    for mb, seconds in reduce.items():
        per_mb = f"{1000 * seconds / float(mb):.3f} ms" if float(mb) else "(latency)"
        print(f"| {float(mb):g} MB | {1e6 * seconds:,.1f} µs | {per_mb} |")
    best = max(runs, key=lambda r: r["samples_per_s"])
    print(f"\nEstimate (Rabenseifner Allreduce, 50 µs / 5 µs per message at 10 / 100 Gb/s, plus the loopback time "
          f"per MB; a machine computes "
          f"like this one's best configuration, {best['samples_per_s']:,.0f} samples/s for the MLP, and the 10× model "
          f"costs {big['params'] / runs[0]['params']:.1f}× the flops per sample; measured here: "
          f"{runs[0]['samples_per_s'] / big['samples_per_s']:.1f}× slower on 1 rank):\n")
    local = reduce["1.0"] / 1.0  # seconds per MB, from the 1 MB Allreduce
    print("\n".join(estimate(runs, {"mlp": runs[0]["params"], "mlp10x": big["params"]}, local)))


if __name__ == "__main__":
    main()
