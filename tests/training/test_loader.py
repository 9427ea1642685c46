"""The prefetching loader: every row once per epoch, bounded memory, errors and early exits handled."""

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import loomnet as ln
from loomnet import PrefetchLoader, fit_stream

pytestmark = pytest.mark.timeout(120)


def _rows(n=1000, d=6):
    X = np.arange(n * d, dtype=np.float32).reshape(n, d)
    return X, np.arange(n)


@pytest.mark.parametrize("source", ["array", "npy"])
def test_each_epoch_yields_every_row_once_in_a_new_order(source, tmp_path):
    X, y = _rows()
    if source == "npy":
        np.save(tmp_path / "X.npy", X)
    loader = PrefetchLoader(tmp_path / "X.npy" if source == "npy" else X, y, batch_size=64, seed=3)
    orders = []
    for epoch in range(2):
        batches = list(loader.epoch(epoch))
        assert len(batches) == len(loader) == 16
        for Xb, yb, _ in batches:
            np.testing.assert_array_equal(Xb, X[yb])
        orders.append(np.concatenate([yb for _, yb, _ in batches]))
        assert sorted(orders[-1]) == list(range(1000))
    assert not np.array_equal(orders[0], orders[1])


def test_leaving_an_epoch_early_ends_the_background_thread():
    X, y = _rows()
    before = set(threading.enumerate())
    loader = PrefetchLoader(X, y, batch_size=10, depth=2)
    for i, _ in enumerate(loader):
        if i == 3:
            break
    assert set(threading.enumerate()) == before


def test_an_error_in_the_background_thread_reaches_the_consumer():
    X, y = _rows()

    def broken(batch):
        raise RuntimeError("cannot convert this batch")

    loader = PrefetchLoader(X, y, batch_size=10, transform=broken)
    with pytest.raises(RuntimeError, match="cannot convert"):
        list(loader)


def test_fit_stream_learns_from_a_memory_mapped_file(tmp_path):
    data = ln.datasets.make_classification(3000, 10, seed=0)
    np.save(tmp_path / "X.npy", data.X)
    model = ln.Sequential([ln.Dense(32, "relu"), ln.Dense(3)], seed=0)
    history = fit_stream(model, tmp_path / "X.npy", data.y, epochs=4, batch_size=64)
    assert history["loss"][-1] < history["loss"][0]
    assert np.mean(model.predict(data.X) == data.y) > 0.85


# The file is 3× the memory the child may allocate: loading it whole must fail with MemoryError,
# streaming it through the loader must work, and the peak resident memory must stay far below it.
_LARGER_THAN_MEMORY = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from loomnet import PrefetchLoader

    path, n_rows, n_cols, allowed_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    y = np.arange(n_rows) % 2

    def vm_data_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmData:"):
                return int(line.split()[1]) / 1024

    limit = int((vm_data_mb() + allowed_mb) * 2**20)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    from loomnet.search.backends import peak_rss_mb  # VmHWM: ru_maxrss would start at pytest's peak
    rss_before = peak_rss_mb()
    try:
        np.load(path)
        print("LOADED-WHOLE")
    except MemoryError:
        print("WHOLE-FILE-MemoryError")
    total, rows = 0.0, 0
    for Xb, yb, _ in PrefetchLoader(path, y, batch_size=4096, release_bytes=16 << 20):
        total += float(Xb[:, 0].sum(dtype=np.float64))
        rows += len(Xb)
    peak = peak_rss_mb()
    print(f"ROWS {rows} SUM {total} PEAK_GROWTH_MB {peak - rss_before:.1f}")
""")


def test_memory_mapped_npy_larger_than_the_allowed_memory_streams_in_bounded_memory(tmp_path):
    n_rows, n_cols, allowed_mb = 400_000, 64, 32  # 100 MiB of float32 under a 32 MiB allocation limit
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_cols))
    X[:, 0] = np.arange(n_rows, dtype=np.float32) % 7
    X.flush()
    del X
    file_mb = path.stat().st_size / 2**20
    assert file_mb > 3 * allowed_mb
    result = subprocess.run([sys.executable, "-c", _LARGER_THAN_MEMORY, str(path), str(n_rows), str(n_cols),
                             str(allowed_mb)], capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr
    assert "WHOLE-FILE-MemoryError" in result.stdout
    words = result.stdout.split()
    assert int(words[words.index("ROWS") + 1]) == n_rows
    assert float(words[words.index("SUM") + 1]) == float(np.sum(np.arange(n_rows) % 7))
    assert float(words[words.index("PEAK_GROWTH_MB") + 1]) < file_mb / 2


def test_the_background_thread_stays_ahead_of_a_slower_consumer():
    X, y = _rows(2000)
    loader = PrefetchLoader(X, y, batch_size=100, depth=4)
    for _ in loader:
        threading.Event().wait(0.005)  # the "compute" of a step
    assert loader.batches_waited <= 2  # the first batch, at most one more on a loaded machine
