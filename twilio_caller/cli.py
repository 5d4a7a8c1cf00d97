"""The command line: argument parsing and output only. Every command runs a tool from the
manifest (the same validation an agent gets) and prints its result — a table for people,
exactly one JSON document on stdout with --json. Errors map to the exit codes of errors.py."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from twilio_caller import __version__
from twilio_caller.errors import InternalError, InvalidInputError, TwilioCallerError

if TYPE_CHECKING:
    from twilio_caller.runtime import Runtime

Handler = Callable[[argparse.Namespace, "Runtime"], tuple[Any, Callable[[Any], str] | None]]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InvalidInputError(f"{message} (see `{self.prog} --help`)")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["simulator"]:
        from twilio_caller.simulator.cli import main as simulator_main

        return simulator_main(arguments[1:])
    as_json = "--json" in arguments
    runtime: Runtime | None = None
    try:
        options = build_parser().parse_args(arguments)
        as_json = options.json or options.command == "tool"
        from twilio_caller.runtime import Runtime

        runtime = Runtime.from_environment()
        result, render = options.handler(options, runtime)
        _print_result(result, render, as_json)
        return 0
    except TwilioCallerError as exc:
        _print_error(exc, as_json)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the boundary: no traceback reaches a person or an agent
        error = InternalError(f"internal error ({type(exc).__name__}); {_log_crash(runtime)}")
        _print_error(error, as_json)
        return error.exit_code
    finally:
        if runtime is not None:
            runtime.close()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print exactly one JSON document on stdout")
    parser = _Parser(prog="twilio-caller", parents=[common],
                     description="Phone calls through Twilio for an AI assistant.")
    parser.set_defaults(json=False)
    parser.add_argument("--version", action="version", version=f"twilio-caller {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    add = command("add", _add, "add a contact: add 312-555-0123 \"Contact7\"")
    add.add_argument("positional", nargs="*", metavar="NUMBER NAME",
                     help="a number and a name, in either order")
    add.add_argument("--name")
    add.add_argument("--number")
    _contact_options(add)

    contacts = command("contacts", _contacts, "list contacts, or `contacts import FILE.csv`")
    contacts.add_argument("action", nargs="?", choices=["list", "import"], default="list")
    contacts.add_argument("file", nargs="?", help="CSV file for import")

    update = command("update", _update, "change a contact (an empty value clears a field)")
    update.add_argument("name")
    update.add_argument("--number")
    _contact_options(update)

    remove = command("remove", _remove, "remove a contact")
    remove.add_argument("name")

    rename = command("rename", _rename, "rename a contact")
    rename.add_argument("old")
    rename.add_argument("new")

    calls = command("calls", _calls, "the call log, newest first")
    calls.add_argument("--contact")
    calls.add_argument("--status")
    calls.add_argument("--since", help="ISO date or time, today or yesterday")
    calls.add_argument("--limit", type=int, default=20)

    config = command("config", _config, "show the configuration, or write an example")
    config.add_argument("action", choices=["show", "init", "path"])
    config.add_argument("--force", action="store_true", help="init: replace an existing file")

    tool = command("tool", _tool, "run any tool of skill.yaml with JSON arguments")
    tool.add_argument("name")
    tool.add_argument("--args", default="{}", metavar="JSON",
                      help="the arguments as a JSON object, or - to read them from stdin")

    command("tools", _tools, "list the tools of skill.yaml")
    commands.add_parser("simulator", help="run the offline Twilio simulator (see simulator --help)")
    return parser


def _contact_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timezone", help="IANA time zone, e.g. America/New_York")
    parser.add_argument("--voice", help="default voice, e.g. Polly.Joanna")
    parser.add_argument("--notes")


def _invoke(runtime: Runtime, tool: str, arguments: dict[str, Any]) -> Any:
    from twilio_caller.manifest import invoke

    return invoke(tool, {k: v for k, v in arguments.items() if v is not None}, runtime)


def _add(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    name, number = _name_and_number(options)
    contact = _invoke(runtime, "add_contact", {
        "name": name, "number": number, "timezone": options.timezone,
        "voice": options.voice, "notes": options.notes,
    })
    return contact, lambda c: f"added {c['name']} ({c['number']})"


def _name_and_number(options: argparse.Namespace) -> tuple[str, str]:
    from twilio_caller.numbers import looks_like_number

    given = list(options.positional)
    if len(given) > 2:
        raise InvalidInputError(
            f"add takes a number and a name; got {len(given)} words (quote a name with spaces)"
        )
    number = options.number or next((word for word in given if looks_like_number(word)), None)
    name = options.name or next((word for word in given if word != number), None)
    if not number or not name:
        raise InvalidInputError(
            "add needs a number and a name: add 312-555-0123 \"Contact7\" "
            "or add --name Contact7 --number 312-555-0123"
        )
    return name, number


def _contacts(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    if options.action == "import":
        if not options.file:
            raise InvalidInputError("contacts import needs a file: contacts import FILE.csv")
        result = _invoke(runtime, "import_contacts", {"path": options.file})
        return result, lambda r: f"imported {len(r['imported'])} contacts"
    if options.file:
        raise InvalidInputError(f"unexpected argument {options.file!r} for `contacts`")
    return _invoke(runtime, "list_contacts", {}), lambda r: _contact_table(r["contacts"])


def _update(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    changes = {"number": options.number, "timezone": options.timezone,
               "voice": options.voice, "notes": options.notes}
    if all(value is None for value in changes.values()):
        raise InvalidInputError("nothing to change: give --number, --timezone, --voice or --notes")
    contact = _invoke(runtime, "update_contact", {"name": options.name, **changes})
    return contact, lambda c: f"updated {c['name']}\n" + _contact_table([c])


def _remove(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    result = _invoke(runtime, "remove_contact", {"name": options.name})
    return result, lambda r: f"removed {r['removed']['name']} ({r['removed']['number']})"


def _rename(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    contact = _invoke(runtime, "update_contact", {"name": options.old, "new_name": options.new})
    return contact, lambda c: f"renamed {options.old} to {c['name']}"


def _calls(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    result = _invoke(runtime, "list_calls", {
        "contact": options.contact, "status": options.status,
        "since": options.since, "limit": options.limit,
    })
    return result, lambda r: _call_table(r["calls"])


def _config(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    from twilio_caller import config as config_module

    if options.action == "path":
        path = config_module.find_config_file(runtime.home) or runtime.home / "config.yaml"
        return {"path": str(path), "exists": path.exists()}, lambda r: r["path"]
    if options.action == "init":
        path = config_module.write_example(runtime.home, force=options.force)
        return {"path": str(path)}, lambda r: f"wrote {r['path']} (every key at its default)"
    loaded = runtime.config
    shown = {
        "home": str(loaded.home),
        "file": str(loaded.file) if loaded.file else None,
        "from_environment": loaded.from_env,
        "values": loaded.masked(),
    }
    if config_module.world_readable_secrets(loaded):
        print(f"warning: {loaded.file} holds secrets and others can read it: "
              f"chmod 600 {loaded.file}", file=sys.stderr)
    return shown, _config_text


def _tool(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, None]:
    from twilio_caller.manifest import invoke

    text = sys.stdin.read() if options.args == "-" else options.args
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--args is not valid JSON: {exc.msg} at column {exc.colno}") from exc
    return invoke(options.name, arguments, runtime), None


def _tools(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    from twilio_caller.manifest import load_manifest

    tools = [
        {"name": spec.name, "description": spec.description, "side_effecting": spec.side_effecting}
        for spec in load_manifest().tools.values()
    ]
    return {"tools": tools}, lambda r: "\n".join(
        f"{t['name']:<16} {t['description']}" for t in r["tools"]
    )


def _contact_table(contacts: list[dict[str, Any]]) -> str:
    if not contacts:
        return "no contacts yet; add one with: twilio-caller add 312-555-0123 \"Contact7\""
    rows = [[c["name"], c["number"], c["timezone"] or "", c["voice"] or "", c["notes"] or ""]
            for c in contacts]
    return _table(["NAME", "NUMBER", "TIMEZONE", "VOICE", "NOTES"], rows)


def _call_table(calls: list[dict[str, Any]]) -> str:
    if not calls:
        return "no calls yet"
    rows = [[c["created_at"], c["to"]["name"] or c["to"]["number"], c["status"],
             (c["reply"] or {}).get("text", "")] for c in calls]
    return _table(["WHEN", "TO", "STATUS", "REPLY (untrusted)"], rows)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
        for line in lines
    )


def _config_text(shown: dict[str, Any]) -> str:
    import yaml

    source = shown["file"] or "no config file (defaults)"
    lines = [f"# home: {shown['home']}", f"# file: {source}"]
    lines += [f"# {key} from ${variable}" for key, variable in shown["from_environment"].items()]
    return "\n".join(lines) + "\n" + yaml.safe_dump(shown["values"], sort_keys=False).rstrip()


def _print_result(result: Any, render: Callable[[Any], str] | None, as_json: bool) -> None:
    if as_json or render is None:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(render(result))


def _print_error(error: TwilioCallerError, as_json: bool) -> None:
    if as_json:
        print(json.dumps(error.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"twilio-caller: {error.message}", file=sys.stderr)


def _log_crash(runtime: Runtime | None) -> str:
    if runtime is None:
        return "please report this as a bug"
    try:
        logs = runtime.home / "logs"
        logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        with (logs / "errors.log").open("a", encoding="utf-8") as stream:
            stream.write(traceback.format_exc() + "\n")
    except OSError:
        return "please report this as a bug"
    return f"details in {logs / 'errors.log'}; please report this as a bug"
