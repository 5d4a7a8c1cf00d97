"""`store export` / `store import`: a store's data (every table of ports.TABLES) as one JSON
file, and that file loaded into another, empty store — SQLite to PostgreSQL and back. The file
holds transcripts and numbers: it is written privately (0600) and atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twilio_caller.errors import ConflictError, InvalidInputError
from twilio_caller.store.ports import TABLES, BadCopy, NotEmpty, Store

FORMAT = "twilio-caller-store"
VERSION = 1


def export_to(store: Store, path: Path) -> dict[str, int]:
    """Write the store's data to `path` (replaced whole, never half-written); rows per table."""
    tables = store.tables.dump()
    document = {"format": FORMAT, "version": VERSION, "tables": tables}
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InvalidInputError(f"store export: the directory {directory} does not exist")
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, ensure_ascii=False, indent=1)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return {table: len(rows) for table, rows in tables.items()}


def import_from(store: Store, path: Path) -> dict[str, int]:
    """Load the file at `path` into `store`, which must hold no data yet; all or nothing."""
    tables = _read(path)
    try:
        return store.tables.load(tables)
    except NotEmpty as exc:
        raise ConflictError(
            f"store import: this store already holds data ({exc.table}: {exc.rows} rows); import "
            "into a new, empty database (or a new home), nothing was written") from exc
    except BadCopy as exc:
        raise InvalidInputError(
            f"store import: {path} does not fit this store ({exc.table}: {exc.detail}); nothing was written"
        ) from exc


def _read(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInputError(f"store import: no file {path}") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"store import: {path} is not a store export ({exc})") from exc
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise InvalidInputError(f"store import: {path} is not a store export (written by `store export`)")
    if document.get("version") != VERSION:
        raise InvalidInputError(f"store import: {path} is version {document.get('version')!r}; "
                                f"this twilio-caller reads version {VERSION}")
    tables = document.get("tables")
    if not isinstance(tables, Mapping) or not all(isinstance(rows, list) and all(
            isinstance(row, Mapping) and all(isinstance(key, str) for key in row) for row in rows)
            for rows in tables.values()):
        raise InvalidInputError(f"store import: {path} has no readable tables (a list of rows each)")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise InvalidInputError(f"store import: {path} has a table this store does not know: {unknown[0]}")
    return {table: [dict(row) for row in rows] for table, rows in tables.items()}
