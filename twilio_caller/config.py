"""config.yaml (or config.json) in the home directory, plus secrets and overrides from the
environment, validated against skill.yaml's configSchema: one source of truth for every key,
its default, its environment variable (`env:`) and whether it is a secret (`secret: true`)."""

from __future__ import annotations

import copy
import functools
import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twilio_caller.errors import ConfigError
from twilio_caller.manifest import describe, load_manifest, schema_errors
from twilio_caller.settings import Settings

HOME_ENV = "TWILIO_CALLER_HOME"
CONFIG_NAMES = ("config.yaml", "config.yml", "config.json")
DATABASE_FILE = "twilio-caller.db"  # the SQLite store in the home


def resolve_home(environ: Mapping[str, str] = os.environ) -> Path:
    configured = environ.get(HOME_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".twilio-caller"


def ensure_home(home: Path) -> Path:
    """Create the home directory, private to its owner; one the owner created with looser
    permissions is tightened to 0700 (it holds transcripts). `doctor` reports what is left."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if loose_home(home) and home.stat().st_uid == os.getuid():
            home.chmod(0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot use {home} as the twilio-caller home ({exc.strerror}); "
            f"set {HOME_ENV} to a writable directory"
        ) from exc
    return home


def loose_home(home: Path) -> str | None:
    """The home's mode (e.g. '0755') when others may read or enter it, else None."""
    mode = stat.S_IMODE(home.stat().st_mode)
    return f"{mode:04o}" if mode & 0o077 else None


@dataclass(frozen=True)
class Config:
    home: Path
    values: dict[str, Any]
    file: Path | None = None
    from_env: dict[str, str] = field(default_factory=dict)  # dotted key → variable name
    text: str | None = None  # the file's content as loaded (None: no file)
    environment: dict[str, str] = field(default_factory=dict)  # the variables it read, as they were
    from_file: dict[str, Any] = field(default_factory=dict)

    def is_set(self, key: str) -> bool:
        """True when the file or the environment gives `key` (not only its default)."""
        return key in self.from_env or _lookup(self.from_file, key) is not None

    def get(self, key: str) -> Any:
        """One value by dotted key: for config's own checks and reports (`config show`, the
        server's fixed-settings fingerprint); the package reads `settings` instead."""
        node: Any = self.values
        for part in key.split("."):
            node = node[part]
        return node

    def leaves(self) -> dict[str, Any]:
        """Every setting by dotted key, in the schema's order (what a fingerprint covers)."""
        return {key: self.get(key) for key, _ in _leaves(config_schema())}

    @functools.cached_property
    def settings(self) -> Settings:
        """These values, typed (built on first use; a reloaded config builds its own)."""
        return Settings.from_values(self.values)

    @property
    def database_path(self) -> Path:
        return self.home / DATABASE_FILE

    def masked(self) -> dict[str, Any]:
        """The values with every secret replaced by a hint that shows only its last 4 chars."""
        shown = copy.deepcopy(self.values)
        for key in secret_keys():
            *parents, last = key.split(".")
            node = shown
            for part in parents:
                node = node[part]
            if node.get(last):
                node[last] = mask(str(node[last]))
        return shown


def mask(secret: str) -> str:
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def load_config(home: Path, environ: Mapping[str, str] = os.environ) -> Config:
    schema = config_schema()
    path = find_config_file(home)
    text = _read_text(path) if path else None
    from_file = _parse(text, path) if path and text is not None else {}
    if from_file:
        _validate(from_file, schema, path.name if path else "config")
    values = _merge(defaults(schema), from_file)
    from_env = _apply_environment(values, environ)
    if from_env:
        _validate(values, schema, "config", from_env)
    return Config(home=home, values=values, file=path, from_env=from_env, text=text,
                  from_file=from_file, environment=environment_values(environ))


def environment_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a config reads, as `environ` has them now (what a reload compares)."""
    return {variable: environ[variable] for variable in environment_keys() if variable in environ}


def config_text(home: Path) -> str | None:
    """The config file's content now (None when there is none): what a reload compares."""
    path = find_config_file(home)
    return _read_text(path) if path else None


def find_config_file(home: Path) -> Path | None:
    return next((home / name for name in CONFIG_NAMES if (home / name).is_file()), None)


def config_schema() -> dict[str, Any]:
    return load_manifest().config_schema


def defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _default(sub) for key, sub in schema["properties"].items()}


def secret_keys() -> list[str]:
    return [key for key, spec in _leaves(config_schema()) if spec.get("secret")]


def environment_keys() -> dict[str, str]:
    """Environment variable → dotted config key it overrides."""
    return {spec["env"]: key for key, spec in _leaves(config_schema()) if "env" in spec}


def world_readable_secrets(config: Config) -> bool:
    """True when the config file holds a secret and others may read it."""
    if config.file is None:
        return False
    mode = config.file.stat().st_mode
    in_file = _read(config.file)
    has_secret = any(_lookup(in_file, key) for key in secret_keys())
    return has_secret and bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def _default(schema: Mapping[str, Any]) -> Any:
    if schema.get("type") == "object" and "properties" in schema:
        return defaults(schema)
    return copy.deepcopy(schema.get("default"))


def _leaves(schema: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for key, sub in schema["properties"].items():
        dotted = f"{prefix}{key}"
        if sub.get("type") == "object" and "properties" in sub:
            yield from _leaves(sub, dotted + ".")
        else:
            yield dotted, sub


def _read(path: Path) -> dict[str, Any]:
    return _parse(_read_text(path), path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def _parse(text: str, path: Path) -> dict[str, Any]:
    data = _parse_json(text, path) if path.suffix == ".json" else _parse_yaml(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: YAML syntax error: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}") from exc


def _parse_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def _validate(
    data: Mapping[str, Any],
    schema: Mapping[str, Any],
    source: str,
    from_env: Mapping[str, str] | None = None,
) -> None:
    errors = schema_errors(schema, data)
    if not errors:
        return
    lines = []
    secrets = set(secret_keys())
    for error in errors[:10]:
        key = ".".join(str(part) for part in error.absolute_path)
        variable = (from_env or {}).get(key)
        lines.append(f"{variable} (config key {key})" if variable else source)
        shown = f"field {key!r}: the value (a secret, not shown) is not valid" if key in secrets else describe(error)
        lines[-1] += f": {shown}"
    more = f"\n(and {len(errors) - 10} more)" if len(errors) > 10 else ""
    raise ConfigError("invalid configuration:\n" + "\n".join(lines) + more)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_environment(values: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    applied = {}
    for variable, key in environment_keys().items():
        value = environ.get(variable, "").strip()
        if not value:
            continue
        *parents, last = key.split(".")
        node = values
        for part in parents:
            node = node[part]
        node[last] = value
        applied[key] = variable
    return applied


def _lookup(data: Mapping[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def write_example(home: Path, *, force: bool = False) -> Path:
    """Write config.yaml with every key at its default, each explained by a comment."""
    ensure_home(home)
    path = home / "config.yaml"
    existing = find_config_file(home)
    if existing and not force:
        raise ConfigError(f"{existing} already exists; use --force to replace it with the example")
    text = example_text()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
    return path


def example_text() -> str:
    header = [
        "# twilio-caller configuration, every key at its default.",
        "# Secrets belong in the environment: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,",
        "# NGROK_AUTHTOKEN, ELEVENLABS_API_KEY (they win over this file).",
        "",
    ]
    return "\n".join(header + list(_example_lines(config_schema(), 0))) + "\n"


def _example_lines(schema: Mapping[str, Any], depth: int) -> Iterator[str]:
    import yaml

    indent = "  " * depth
    for key, sub in schema["properties"].items():
        if "description" in sub:
            yield f"{indent}# {sub['description']}"
        if sub.get("type") == "object" and "properties" in sub:
            lines = list(_example_lines(sub, depth + 1))
            every_key_commented = all(line.lstrip().startswith("#") for line in lines)  # secrets only
            yield f"{indent}{key}:" + (" {}" if every_key_commented else "")
            yield from lines
            continue
        rendered = yaml.safe_dump(
            {key: sub.get("default")}, default_flow_style=True, sort_keys=False, width=10_000
        ).strip()[1:-1]
        if sub.get("secret"):
            yield f"{indent}# {rendered}   # set {sub['env']} instead"
        else:
            yield f"{indent}{rendered}"
