"""Wake-ups across processes on one PostgreSQL database: NOTIFY after a call changed, and one
listening connection per process (LISTEN, psycopg 3's notifies) that hands each call_id to the
server. No polling: the listening thread sleeps in the socket until a notification comes (it
looks up once a second only to see whether it was told to stop)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from twilio_caller.store.postgres.database import PgDatabase, redact

log = logging.getLogger("twilio_caller.store.wakeups")
CHANNEL = "twilio_caller_calls"
STOP_CHECK_SECONDS = 1.0
RECONNECT_SECONDS = 1.0


class PgWakeups:
    def __init__(self, database: PgDatabase) -> None:
        self._db = database
        self._own: set[int] = set()  # backend pids this process notified through: its own news

    def _mine(self, note: psycopg.Notify) -> bool:
        return note.pid in self._own

    @property
    def shared(self) -> bool:
        return True

    def notify(self, call_id: str) -> None:
        if not self._own:  # known before the first notification can arrive
            self._own.add(int(self._db.query("SELECT pg_backend_pid() AS pid")[0]["pid"]))
        rows = self._db.query("SELECT pg_notify(%s, %s), pg_backend_pid() AS pid", (CHANNEL, call_id))
        self._own.add(int(rows[0]["pid"]))  # a connection opened again: a new pid (one extra wake-up)

    def listen(self, wake: Callable[[str | None], None]) -> Callable[[], None]:
        listener = _Listener(self._db.url, wake, self._mine)
        listener.start()
        return listener.stop


class _Listener:
    """A daemon thread with its own autocommit connection. A lost connection is opened again
    and `wake(None)` said: what was notified meanwhile is looked at again."""

    def __init__(self, url: str, wake: Callable[[str | None], None], mine: Callable[[psycopg.Notify], bool]) -> None:
        self._url = url
        self._wake = wake
        self._mine = mine  # this process's own notifications: its waiters were woken in process
        self._stopped = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="twilio-caller wakeups", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._listening.wait(10)  # a change committed after listen() returns is not missed

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(STOP_CHECK_SECONDS * 3)

    def _run(self) -> None:
        first = True
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    if not first:
                        self._wake(None)
                    first = False
                    while not self._stopped.is_set():
                        for note in connection.notifies(timeout=STOP_CHECK_SECONDS):
                            if not self._mine(note):
                                self._wake(note.payload)
            except psycopg.Error as exc:
                log.warning("wake-ups from %s lost (%s): listening again", redact(self._url),
                            " ".join(str(exc).split())[:200])
                self._stopped.wait(RECONNECT_SECONDS)
