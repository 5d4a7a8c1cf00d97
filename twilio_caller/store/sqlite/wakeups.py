"""A home's SQLite store has one server: its waiters wake in process (sessions.py), so there
is nobody else to tell."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class LocalWakeups:
    @property
    def shared(self) -> bool:
        return False

    def notify(self, call_id: str) -> None:
        """One server per home: the waiters were woken in process already."""

    async def listen(self, wake: Callable[[str | None], None]) -> Callable[[], Awaitable[None]]:
        async def stop() -> None:
            """Nothing was started."""

        return stop
