"""Persistent state behind small typed interfaces (`store.ports`): contacts, the call log,
the safety ledger, call state and leases, scheduled calls. `store.sql` holds the repositories
written once for both; `store.sqlite` is the embedded database (a file in the home),
`store.postgres` the shared one (`store.url`). They hold all the SQL, and nothing here imports a
domain module."""

from __future__ import annotations

from twilio_caller.store.opening import open_store
from twilio_caller.store.ports import Store

__all__ = ["Store", "open_store"]
