"""Where a PostgreSQL turn's time goes, measured inside each server process of bench/instances.py
(`--probe`: this directory on PYTHONPATH). Counts every statement psycopg runs and where it ran —
synchronously on the thread of a running event loop (the loop waits for it), in another thread,
or awaited through the async API — with the time spent, and the time spent waiting for the store's
connection (the old single connection's lock; the pool's getconn). Written at exit as JSON to
$TC_PROBE_DIR/<pid>.json. A measurement aid for the bench, never loaded by the product."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

OUT = os.environ.get("TC_PROBE_DIR")
counts: Counter[str] = Counter()
seconds: Counter[str] = Counter()
guard = threading.Lock()


def _add(kind: str, spent: float) -> None:
    with guard:
        counts[kind] += 1
        seconds[kind] += spent


def _where() -> str:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "sync_off_loop"
    if os.environ.get("TC_PROBE_SITES"):  # which product line ran a statement on the loop
        counts["site " + _site()] += 1
    return "sync_on_loop"


def _site() -> str:
    import traceback

    for frame in reversed(traceback.extract_stack()[:-3]):
        if "twilio_caller" in frame.filename and "/store/" not in frame.filename:
            return f"{frame.filename.rsplit('twilio_caller/', 1)[-1]}:{frame.lineno} {frame.name}"
    return "?"


def _install() -> None:
    import psycopg

    execute = psycopg.Cursor.execute

    def timed_execute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return execute(self, *args, **kwargs)
        finally:
            _add(_where(), time.perf_counter() - began)

    psycopg.Cursor.execute = timed_execute  # type: ignore[method-assign]
    aexecute = psycopg.AsyncCursor.execute

    async def timed_aexecute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return await aexecute(self, *args, **kwargs)
        finally:
            _add("async", time.perf_counter() - began)

    psycopg.AsyncCursor.execute = timed_aexecute  # type: ignore[method-assign]
    try:
        from psycopg_pool import ConnectionPool

        getconn = ConnectionPool.getconn

        def timed_getconn(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            try:
                return getconn(self, *args, **kwargs)
            finally:
                _add("wait_for_connection_" + _where().removeprefix("sync_"), time.perf_counter() - began)

        ConnectionPool.getconn = timed_getconn  # type: ignore[method-assign]
    except ImportError:
        pass
    _time_single_connection_lock()


def _time_single_connection_lock() -> None:
    """Before the pool: every store call took the process's one connection under an RLock."""
    from twilio_caller.store.postgres import database

    if not hasattr(database, "threading"):
        return
    base = database.threading.RLock

    class TimedRLock:
        def __init__(self) -> None:
            self._lock = base()

        def __enter__(self) -> bool:
            began = time.perf_counter()
            self._lock.acquire()
            _add("wait_for_connection_" + _where().removeprefix("sync_"), time.perf_counter() - began)
            return True

        def __exit__(self, *exc: object) -> None:
            self._lock.release()

    class Shim:
        RLock = TimedRLock

        def __getattr__(self, name: str) -> object:
            return getattr(threading, name)

    database.threading = Shim()  # type: ignore[assignment]


def _write() -> None:
    if OUT:
        Path(OUT, f"{os.getpid()}.json").write_text(json.dumps({"counts": counts, "seconds": seconds}))


if OUT:
    _install()
    atexit.register(_write)
