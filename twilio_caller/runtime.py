"""What a tool needs to run: the home directory, its config, the store and the clock —
each opened on first use, so a command pays only for what it touches. How one invocation
runs (simulated or live, …) is not kept here: see invocation.py."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

from twilio_caller.calls import CallLog
from twilio_caller.clock import Clock, SystemClock
from twilio_caller.config import (
    DATABASE_FILE, Config, config_text, ensure_home, environment_values, load_config, resolve_home,
)
from twilio_caller.contacts import ContactBook
from twilio_caller.errors import ConfigError
from twilio_caller.settings import Settings
from twilio_caller.store import Store, open_store



class Runtime:
    def __init__(
        self,
        home: Path,
        *,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.clock: Clock = clock or SystemClock()
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self._config: Config | None = None

    @classmethod
    def from_environment(cls, clock: Clock | None = None) -> Runtime:
        return cls(resolve_home(os.environ), clock=clock)

    @property
    def config(self) -> Config:
        """The config as last loaded (loaded on first use); `rules_in_force` rereads it."""
        if self._config is None:
            self._config = load_config(self.home, self.environ)
        return self._config

    @property
    def settings(self) -> Settings:
        """The config as last loaded, typed; `settings_in_force` rereads it."""
        return self.config.settings

    def settings_in_force(self) -> Settings:
        """`rules_in_force()`, typed: built afresh from a config that changed."""
        return self.rules_in_force().settings

    def rules_in_force(self) -> Config:
        """The config as the file and the environment say now: reloaded when the file's content
        (not only its mtime) or a variable changed, and validated; a config that no longer
        validates raises ConfigError (never the old rules)."""
        current = self._config
        if (current is None or config_text(self.home) != current.text
                or environment_values(self.environ) != current.environment):
            current = self._config = load_config(self.home, self.environ)
        return current

    @functools.cached_property
    def store(self) -> Store:
        ensure_home(self.home)
        return open_store(self.config.database_path, self.settings.store.url)

    @functools.cached_property
    def contacts(self) -> ContactBook:
        return ContactBook(self.store, self.clock, self.settings.phone_region)

    @functools.cached_property
    def calls(self) -> CallLog:
        return CallLog(self.store, self.clock, self.settings.safety.timezone)

    def record_crash(self) -> str:
        """Keep the current exception's traceback in logs/errors.log (never shown to a person
        or an agent); returns the sentence that tells them where it is."""
        import traceback

        try:
            logs = self.home / "logs"
            logs.mkdir(mode=0o700, parents=True, exist_ok=True)
            with (logs / "errors.log").open("a", encoding="utf-8") as stream:
                stream.write(traceback.format_exc() + "\n")
        except OSError:
            return "please report this as a bug"
        return f"details in {logs / 'errors.log'}; please report this as a bug"

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()


def existing_store(home: Path, environ: Mapping[str, str] | None = None) -> Store | None:
    """The home's store if it has one yet (its PostgreSQL database when `store.url` names one,
    else its SQLite file if that exists), without creating anything; the caller closes it.
    A config that does not load names no database: then the SQLite file, if any (the server
    this serves will refuse that config itself, with its own clear error)."""
    path = home / DATABASE_FILE
    try:
        url = load_config(home, os.environ if environ is None else environ).settings.store.url
    except ConfigError:
        url = None
    if not url and not path.exists():
        return None
    return open_store(path, url)
