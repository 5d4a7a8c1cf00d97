"""run/server.json: how clients find the server — `{pid, webhook_port, control_port, token,
version, mode, started_at}`, private to its owner (0600), written atomically. Clients import
this small module, not the server."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def run_file(home: Path) -> Path:
    return home / "run" / "server.json"


def read_run_file(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(run_file(home).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_run_file(home: Path, info: Mapping[str, Any]) -> None:
    path = run_file(home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        json.dump(dict(info), stream)
    os.replace(temporary, path)


def remove_run_file(home: Path, pid: int) -> None:
    info = read_run_file(home)
    if info is not None and info.get("pid") == pid:
        run_file(home).unlink(missing_ok=True)
