"""Wake-ups across processes on one PostgreSQL database: NOTIFY after a call changed, and one
listening connection per process — psycopg 3's AsyncConnection in the server's event loop
(LISTEN, then `notifies()`), which hands each call_id to the server. No polling and no thread:
the loop sleeps on the socket until a notification comes.

A payload is `<call_id> <sender>`: the sender is this process's random id, so a process skips
its own news (its waiters were woken in process) whichever pooled connection sent it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

import psycopg

from twilio_caller.store.postgres.database import CONNECT_TIMEOUT_SECONDS, PgDatabase, redact

log = logging.getLogger("twilio_caller.store.wakeups")
CHANNEL = "twilio_caller_calls"
RECONNECT_SECONDS = 1.0
LISTEN_TIMEOUT_SECONDS = 10.0


class PgWakeups:
    def __init__(self, database: PgDatabase) -> None:
        self._db = database
        self._sender = secrets.token_hex(8)

    @property
    def shared(self) -> bool:
        return True

    def notify(self, call_id: str) -> None:
        self._db.query("SELECT pg_notify(?, ?)", (CHANNEL, f"{call_id} {self._sender}"))

    async def listen(self, wake: Callable[[str | None], None]) -> Callable[[], Awaitable[None]]:
        """Returns once LISTEN is in force (a change committed after this is not missed), or
        after LISTEN_TIMEOUT_SECONDS with the listener still trying (logged)."""
        listening = asyncio.Event()
        task = asyncio.ensure_future(self._listen(wake, listening))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listening.wait(), LISTEN_TIMEOUT_SECONDS)

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return stop

    async def _listen(self, wake: Callable[[str | None], None], listening: asyncio.Event) -> None:
        """A lost connection is opened again and `wake(None)` said: what was notified
        meanwhile is looked at again."""
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self._db.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    listening.set()
                    if not first:
                        wake(None)
                    first = False
                    async for note in connection.notifies():
                        call_id, _, sender = note.payload.partition(" ")
                        if sender != self._sender:
                            wake(call_id)
            except psycopg.Error as exc:
                log.warning("wake-ups from %s lost (%s): listening again", redact(self._db.url),
                            " ".join(str(exc).split())[:200])
            await asyncio.sleep(RECONNECT_SECONDS)
