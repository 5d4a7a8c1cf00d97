"""skill.yaml: the tool registry and the config schema, and JSON-Schema validation of tool
arguments and results against it. jsonschema is imported only when something is validated."""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from twilio_caller.errors import InternalError, InvalidInputError, UnknownToolError
from twilio_caller.invocation import Invocation

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

MANIFEST_PATH = Path(__file__).with_name("skill.yaml")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    entrypoint: str
    side_effecting: bool
    parameters: dict[str, Any]
    returns: dict[str, Any]
    served_by: str | None = None  # the server's own implementation, for a tool the server runs

    @functools.cached_property
    def function(self) -> Callable[..., dict[str, Any]]:
        return cast("Callable[..., dict[str, Any]]", _resolve(self.entrypoint))

    @functools.cached_property
    def server_function(self) -> Callable[..., Awaitable[Any]] | None:
        """The implementation the control API runs (None: the server does not run this tool)."""
        return _resolve(self.served_by) if self.served_by is not None else None

    @functools.cached_property
    def takes_invocation(self) -> bool:
        """The function's leading positional parameters are its context: the runtime, then —
        for a tool whose run depends on it (a call: simulated or live) — the invocation."""
        return len(_context_parameters(self.function)) > 1

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        """The arguments with schema defaults filled in, or InvalidInputError naming the field."""
        if not isinstance(arguments, Mapping):
            raise InvalidInputError(
                f"{self.name}: arguments must be a JSON object, not {_json_type(arguments)}"
            )
        _reject_non_finite(self.name, arguments)
        arguments = without_null_optionals(self.parameters, arguments)
        error = _first_error(self.parameters, arguments)
        if error is not None:
            raise InvalidInputError(f"{self.name}: {describe(error)}", field=_field(error))
        defaults = {
            key: spec["default"]
            for key, spec in self.parameters.get("properties", {}).items()
            if "default" in spec and key not in arguments
        }
        return {**defaults, **arguments}

    def validate_result(self, result: Any) -> None:
        error = _first_error(self.returns, result)
        if error is not None:
            raise InternalError(
                f"{self.name} produced a result that breaks its declared shape "
                f"({describe(error)}); please report this as a bug"
            )


def _resolve(entrypoint: str) -> Any:
    module_name, _, attribute = entrypoint.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _reject_non_finite(tool: str, value: Any, path: str = "") -> None:
    """NaN and ±Infinity (which JSON parsers accept) are no numbers a tool can use."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"{tool}: field {path or 'value'!r}: {value} is not a finite number",
                                field=path or None)
    children = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        _reject_non_finite(tool, child, _join(path or None, str(key)))


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    tools: dict[str, ToolSpec]
    config_schema: dict[str, Any]

    def tool(self, name: str) -> ToolSpec:
        try:
            return self.tools[name]
        except KeyError:
            raise UnknownToolError(
                f"unknown tool {name!r}{_suggestion(name, self.tools)}; "
                f"tools: {', '.join(sorted(self.tools))}"
            ) from None


@functools.cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as stream:
        raw = yaml.load(stream, Loader=loader)
    tools = {
        entry["name"]: ToolSpec(
            name=entry["name"],
            description=" ".join(entry["description"].split()),
            entrypoint=entry["entrypoint"],
            side_effecting=bool(entry.get("side_effecting", False)),
            parameters=entry["parameters"],
            returns=entry["returns"],
            served_by=entry.get("served_by"),
        )
        for entry in raw["tools"]
    }
    return Manifest(
        name=raw["name"], version=raw["version"], tools=tools, config_schema=raw["configSchema"]
    )


def invoke(name: str, arguments: Any, runtime: Any, invocation: Invocation | None = None) -> dict[str, Any]:
    """Run one tool: validate its arguments, call it, check its result against `returns`.
    `invocation` says how (default: as the runtime's environment says)."""
    spec = load_manifest().tool(name)
    validated = spec.validate_arguments(arguments)
    if spec.takes_invocation:
        how = invocation if invocation is not None else Invocation.from_environment(runtime.environ)
        result = spec.function(runtime, how, **validated)
    else:
        result = spec.function(runtime, **validated)
    spec.validate_result(result)
    return result


def schema_errors(schema: Mapping[str, Any], instance: Any) -> list[ValidationError]:
    """Every way `instance` breaks `schema`, outermost first."""
    return sorted(_validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))


def describe(error: ValidationError) -> str:
    """One sentence a person can act on: which field, and what is wrong with it."""
    where = _field(error)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"missing required field {_join(where, missing)!r}"
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        unknown = sorted(set(cast(Iterable[str], error.instance)) - set(allowed))
        names = ", ".join(repr(_join(where, key)) for key in unknown)
        hint = _suggestion(unknown[0], allowed) if len(unknown) == 1 else ""
        expected = f"; expected one of: {', '.join(sorted(allowed))}" if allowed else ""
        return f"unknown field{'s' if len(unknown) > 1 else ''} {names}{hint}{expected}"
    subject = f"field {where!r}" if where else "the value"
    return f"{subject}: {_reason(error)}"


def _reason(error: ValidationError) -> str:
    value: Any = error.instance
    expected: Any = error.validator_value
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    match error.validator:
        case "type":
            return f"{shown} is {_json_type(value)}, expected {_expected_types(expected)}"
        case "enum":
            return f"{shown} is not one of {', '.join(map(repr, expected))}"
        case "const":
            return f"{shown} must be {error.validator_value!r}"
        case "minLength" if error.validator_value == 1:
            return "must not be empty"
        case "minLength":
            return f"must be at least {error.validator_value} characters"
        case "maxLength":
            return f"is {len(value)} characters long; at most {error.validator_value} allowed"
        case "pattern":
            return f"{shown} does not have the expected form"
        case "minimum" | "exclusiveMinimum" | "maximum" | "exclusiveMaximum":
            return error.message
        case "oneOf" | "anyOf":
            return f"{shown} is not an accepted value"
        case _:
            return error.message


def without_null_optionals(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Strict-mode callers send null for an optional member they don't give (at any depth of
    nested objects): drop it, unless the member's own schema accepts null."""
    declared = schema.get("properties", {})
    required = set(schema.get("required", []))
    kept: dict[str, Any] = {}
    for key, value in arguments.items():
        member = declared.get(key)
        if member is None:
            kept[key] = value  # unknown: left for validation to name
        elif value is None and key not in required and not _accepts_null(member):
            continue
        elif isinstance(value, Mapping) and "properties" in member:
            kept[key] = without_null_optionals(member, value)
        else:
            kept[key] = value
    return kept


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return (kind == "null" or (isinstance(kind, list) and "null" in kind)
            or None in schema.get("enum", []) or any(map(_accepts_null, schema.get("anyOf", []))))


def _first_error(schema: Mapping[str, Any], instance: Any) -> ValidationError | None:
    errors = schema_errors(schema, instance)
    return errors[0] if errors else None


_VALIDATORS: dict[int, Any] = {}  # by id(schema); a hit is checked to be the same object


def _validator(schema: Mapping[str, Any]) -> Any:
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached.schema is not schema:
        from jsonschema import Draft202012Validator

        cached = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        _VALIDATORS[id(schema)] = cached
    return cached


def _field(error: ValidationError) -> str | None:
    path = ".".join(str(part) for part in error.absolute_path)
    return path or None


def _join(parent: str | None, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _json_type(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__


def _expected_types(types: str | list[str]) -> str:
    names = [types] if isinstance(types, str) else types
    return " or ".join("an integer" if t == "integer" else _json_type(_SAMPLES[t]) for t in names)


_SAMPLES: dict[str, Any] = {
    "null": None, "boolean": True, "number": 0.5, "string": "", "array": [], "object": {},
}


def _suggestion(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _context_parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    return [parameter for parameter in inspect.signature(function).parameters.values()
            if parameter.kind is not inspect.Parameter.KEYWORD_ONLY]


def signature_matches(spec: ToolSpec) -> list[str]:
    """Differences between a tool's declared parameters and its function's signature: the
    arguments are keyword-only, after the context (the runtime, and maybe `invocation`)."""
    context = _context_parameters(spec.function)
    parameters = [p for p in inspect.signature(spec.function).parameters.values() if p not in context]
    declared = spec.parameters.get("properties", {})
    required = set(spec.parameters.get("required", []))
    problems = []
    names = {p.name for p in parameters}
    problems += [f"{spec.name}: declared {n!r} is not a parameter" for n in set(declared) - names]
    problems += [f"{spec.name}: parameter {n!r} is not declared" for n in names - set(declared)]
    misplaced = context[2:] if [p.name for p in context[1:2]] == ["invocation"] else context[1:]
    problems += [f"{spec.name}: parameter {p.name!r} must be keyword-only" for p in misplaced]
    for parameter in parameters:
        has_default = parameter.default is not inspect.Parameter.empty
        if (parameter.name in required) == has_default:
            problems.append(f"{spec.name}: {parameter.name!r} required-ness differs")
    return problems
