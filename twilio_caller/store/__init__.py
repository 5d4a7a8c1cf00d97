"""Persistent state behind small typed interfaces (`store.ports`): contacts, the call log,
the safety ledger, call state and leases, scheduled calls. `store.sqlite` is the embedded
implementation and the only place that holds SQL; nothing here imports a domain module."""

from __future__ import annotations

from pathlib import Path

from twilio_caller.store.ports import Store

__all__ = ["Store", "open_store"]


def open_store(path: Path) -> Store:
    """The store of a home: its SQLite database file, opened and migrated."""
    from twilio_caller.store.sqlite import SqliteStore

    return SqliteStore(path)
