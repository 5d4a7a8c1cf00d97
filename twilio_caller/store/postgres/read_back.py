"""The read-back of a call on PostgreSQL for the server's event loop: psycopg 3's async API
(an AsyncConnectionPool of the loop that reads), so a request or a tool awaiting it never
blocks the loop, and concurrent ones read on several connections. The statement is the one
both stores share (`store/sql/read_back.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from twilio_caller.store.ports import CallSnapshot
from twilio_caller.store.postgres.database import (
    CONNECT_TIMEOUT_SECONDS, PgDatabase, connection_error, pool_exhausted,
)
from twilio_caller.store.sql.read_back import read_back_sql, snapshot

AsyncConnection = psycopg.AsyncConnection[DictRow]


class PgReader:
    def __init__(self, database: PgDatabase, *, pool_timeout: float | None = None) -> None:
        self._url = database.url
        self._size = database.pool_size
        self._timeout = pool_timeout if pool_timeout is not None else database.pool_timeout
        self._sql = read_back_sql(database.dialect).replace("?", "%s")
        self._pool: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
            self._url, min_size=1, max_size=self._size, timeout=self._timeout, open=False,
            name="twilio-caller read-back", connection_class=AsyncConnection,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        self._opened = False

    async def read_back(self, call_id: str) -> CallSnapshot | None:
        """One statement; on a connection found lost, asked again on another."""
        rows = await self._query((call_id,))
        return snapshot(rows[0]) if rows else None

    async def _query(self, parameters: tuple[Any, ...]) -> list[DictRow]:
        try:
            for attempt in range(self._size + 1):
                async with self._connection() as connection:
                    try:
                        cursor = await connection.execute(self._sql, parameters)
                        return await cursor.fetchall()
                    except psycopg.OperationalError:
                        if not connection.broken or attempt == self._size:
                            raise
        except psycopg.OperationalError as exc:
            raise connection_error(self._url, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        if not self._opened:  # opened in the loop that reads (an async pool belongs to one loop)
            await self._pool.open()
            self._opened = True
        try:
            async with self._pool.connection() as connection:
                yield connection
        except PoolTimeout as exc:
            raise pool_exhausted(self._url, self._size, self._timeout) from exc

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
