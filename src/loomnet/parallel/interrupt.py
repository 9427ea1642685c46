"""Ctrl-C during parallel training: finish the step in flight, then raise KeyboardInterrupt.

Why: a KeyboardInterrupt raised in the middle of an optimiser update leaves half-updated
parameters; workers would keep running. The handler only asks the trainer to stop; training
stops at the next step boundary (milliseconds), threads are joined, and then the caller gets
its KeyboardInterrupt with consistent parameters. A second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def deferred_interrupt(request_stop: Callable[[], None]) -> Iterator[None]:
    """Turn the first SIGINT in the block into ``request_stop()``; re-raise it when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield  # someone else owns Ctrl-C
        return
    received = []

    def handler(signum, frame):  # noqa: ANN001 - signal handler signature
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        request_stop()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt("training stopped at a step boundary; the parameters are those after the "
                                "last completed step")
