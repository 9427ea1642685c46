"""Waiting for a search's jobs, whatever executor runs them."""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, Executor, Future, wait
from typing import Any


def collect(pool: Executor, futures: list[Future]) -> list[Any]:
    """Wait for all; on the first error cancel what has not started and re-raise it."""
    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    for future in done:
        if future.exception() is not None:
            for other in futures:
                other.cancel()
            raise future.exception()
    return [future.result() for future in futures]
