"""Waiting in tests for state another process or thread writes (a server's store, a child
process's run file), where no event crosses the boundary to wait on: a bounded poll."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_SECONDS = 0.02


def eventually(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """True as soon as `condition()` holds; False once `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True
