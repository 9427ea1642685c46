"""Persistent worker threads: the caller is worker 0, N-1 threads wait for the next task.

Why persistent: starting or waking an executor future per step costs more than a small step.
Each thread takes tasks from its own queue and a ``None`` sentinel ends it; ``close`` joins
them all. An exception in any worker is re-raised in the caller, with the worker's traceback,
once every worker has finished the task (``on_error`` tells the others to stop early).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType

import numpy as np

Task = Callable[[int], None]
_POLL_S = 0.05  # the caller wakes this often while waiting, so Ctrl-C is handled promptly


class WorkerPool:
    """Run ``task(worker_index)`` on ``workers`` workers at once; the calling thread is worker 0.

    The threads persist between tasks (waking a thread costs less than starting one per step)
    and end in :meth:`close`, or when the ``with`` block ends: no thread outlives its job. An
    exception in any worker reaches the caller once every worker has finished the task.

    Parameters
    ----------
    workers : int
        Workers, the caller included (``workers - 1`` threads are started).
    name : str, default 'loomnet-worker'
        Prefix of the thread names (``name-1``, ``name-2``, …).

    Raises
    ------
    ValueError
        If ``workers`` < 1.

    Examples
    --------
    >>> from loomnet.parallel import WorkerPool
    >>> squares = [0] * 3
    >>> def task(i):
    ...     squares[i] = i * i
    >>> with WorkerPool(3) as pool:
    ...     pool.run(task)
    >>> squares
    [0, 1, 4]
    >>> def fails_on_worker_2(i):
    ...     if i == 2:
    ...         raise ValueError("worker 2 failed")
    >>> with WorkerPool(3) as pool:
    ...     pool.run(fails_on_worker_2)
    Traceback (most recent call last):
    ...
    ValueError: worker 2 failed
    """

    def __init__(self, workers: int, name: str = "loomnet-worker"):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._on_error: Callable[[], None] | None = None
        self._inboxes = [queue.SimpleQueue() for _ in range(workers - 1)]
        self._threads = [threading.Thread(target=self._serve, args=(i + 1, inbox), name=f"{name}-{i + 1}",
                                          daemon=True)
                         for i, inbox in enumerate(self._inboxes)]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def _serve(self, index: int, inbox: queue.SimpleQueue) -> None:
        while (item := inbox.get()) is not None:
            task, errstate = item
            try:
                with np.errstate(**errstate):
                    task(index)
            except BaseException as exc:  # noqa: BLE001 - every error travels to the caller
                if self._on_error is not None:
                    self._on_error()  # at once: the caller may be busy with its own share
                self._done.put(exc)
            else:
                self._done.put(None)

    def run(self, task: Task, on_error: Callable[[], None] | None = None) -> None:
        """Run ``task`` on every worker and wait for all; re-raise the first worker error.

        ``on_error`` is called as soon as any worker fails (from that worker's thread), so it
        must be thread-safe and quick: set an Event, abort a Barrier.
        """
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        self._on_error = on_error
        errstate = np.geterr()  # NumPy's error settings are per thread: the workers take the caller's
        for inbox in self._inboxes:
            inbox.put((task, errstate))
        errors: list[BaseException] = []

        def failed(exc: BaseException) -> None:
            errors.append(exc)
            if on_error is not None:
                on_error()

        try:
            task(0)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others stop
            failed(exc)
        pending = len(self._inboxes)
        while pending:
            try:
                result = self._done.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            except BaseException as exc:  # Ctrl-C while waiting: stop the others, keep waiting
                failed(exc)
                continue
            pending -= 1
            if result is not None:
                errors.append(result)
        if errors:
            raise _first_cause(errors)

    def close(self) -> None:
        """End and join every thread (idempotent)."""
        if self._closed:
            return
        for inbox in self._inboxes:
            inbox.put(None)
        for thread in self._threads:
            thread.join()
        self._closed = True

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _first_cause(errors: list[BaseException]) -> BaseException:
    """The error that started it: not a barrier broken because of it, not a stop request."""
    for exc in errors:
        if not isinstance(exc, threading.BrokenBarrierError):
            return exc
    return errors[0]
