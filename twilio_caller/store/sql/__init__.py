"""The repositories written once for both stores: their SQL (with `?` marks, which the
PostgreSQL connection also takes) and logic. What differs between SQLite and PostgreSQL —
connections, how writers are serialised, the insertion-order column, row locks, DDL — is
the backend's `Dialect` (`store.sql.dialect`) and its own package."""
