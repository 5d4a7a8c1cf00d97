"""The command line: argument parsing and output only. Every command runs a tool from the
manifest (the same validation an agent gets) and prints its result — a table for people,
exactly one JSON document on stdout with --json. Errors map to the exit codes of errors.py.
Each command is declared (`@command(name, help, arg(...), ...)`) right above its handler."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from twilio_caller import __version__, render
from twilio_caller.errors import (
    ConfigError, ConflictError, InvalidInputError, TwilioCallerError, crash_message, reported,
)
from twilio_caller.invocation import Invocation, Progress

if TYPE_CHECKING:
    from twilio_caller.runtime import Runtime

Handler = Callable[[argparse.Namespace, "Runtime"], tuple[Any, Callable[[Any], str] | None]]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InvalidInputError(f"{message} (see `{self.prog} --help`)")


@dataclasses.dataclass(frozen=True)
class Arg:
    """One `add_argument` of a command, as declared above its handler."""

    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler | None
    arguments: tuple[Arg, ...]


COMMANDS: list[Command] = []  # in declaration order: the order of `--help`


def command(name: str, help: str, *arguments: Arg) -> Callable[[Handler], Handler]:
    """Declare the command `name` run by the handler below it, with its arguments."""
    def declare(handler: Handler) -> Handler:
        COMMANDS.append(Command(name, help, handler, arguments))
        return handler
    return declare


def listed(name: str, help: str) -> None:
    """A command `main` runs before any parsing (mcp, simulator): only listed in --help."""
    COMMANDS.append(Command(name, help, None, ()))


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


CONTACT_OPTIONS = (
    arg("--timezone", help="IANA time zone, e.g. America/New_York"),
    arg("--voice", help="default voice, e.g. Polly.Joanna"),
    arg("--notes"),
)
SIMULATE_OPTIONS = (
    arg("--simulate", action="store_true", help="use the built-in offline Twilio simulator (no account needed)"),
    arg("--callee", metavar="FILE", help="simulate mode: a callee script (YAML)"),
)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["simulator"]:
        from twilio_caller.simulator.cli import main as simulator_main

        return simulator_main(arguments[1:])
    if arguments[:1] == ["mcp"] and not {"-h", "--help"} & set(arguments):
        from twilio_caller.mcp_server import serve_stdio

        serve_stdio()  # stdout is the MCP channel: nothing else may be printed on it
        return 0
    as_json = "--json" in arguments
    runtime: Runtime | None = None
    try:
        options = build_parser().parse_args(arguments)
        as_json = options.json or options.command == "tool"
        from twilio_caller.runtime import Runtime

        runtime = Runtime.from_environment()
        result, render = options.handler(options, runtime)
        _print_result(result, render, as_json)
        return _exit_code(options, result)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: no traceback reaches a person or an agent
        error = reported(exc, lambda bug: crash_message(bug, _crash_record(runtime)))
        _print_error(error, as_json)
        return error.exit_code
    finally:
        if runtime is not None:
            runtime.close()


def _crash_record(runtime: Runtime | None) -> str:
    return runtime.record_crash() if runtime is not None else "please report this as a bug"


def _exit_code(options: argparse.Namespace, result: Any) -> int:
    """0, except `doctor` with a failed check: the config exit code, so scripts can stop."""
    if options.command == "doctor" and not result.get("ok"):
        return ConfigError.exit_code
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print exactly one JSON document on stdout")
    parser = _Parser(prog="twilio-caller", description="Phone calls through Twilio for an AI assistant.")
    # its own --json (not the shared action: a default set here would reset a global --json
    # when the command's copy of the option is parsed)
    parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")
    parser.add_argument("--version", action="version", version=f"twilio-caller {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)
    for declared in COMMANDS:
        if declared.handler is None:  # run before parsing (main): listed for --help only
            commands.add_parser(declared.name, help=declared.help)
            continue
        sub = commands.add_parser(declared.name, parents=[common], help=declared.help, description=declared.help)
        sub.set_defaults(handler=declared.handler)
        for argument in declared.arguments:
            sub.add_argument(*argument.flags, **argument.options)
    return parser


# tool arguments the CLI spells differently: its errors name the flag a person typed
CLI_FLAGS = {"older_than_days": "--older-than", "timeout_seconds": "--timeout", "send_digits": "--send-digits",
             "keep_open": "--keep-open", "dry_run": "--dry-run", "new_name": "NEW"}


def _invoke(runtime: Runtime, tool: str, arguments: dict[str, Any], invocation: Invocation | None = None) -> Any:
    from twilio_caller.manifest import invoke

    try:
        return invoke(tool, {k: v for k, v in arguments.items() if v is not None}, runtime, invocation)
    except InvalidInputError as exc:
        raise _as_cli_flags(exc) from exc


def _as_cli_flags(error: InvalidInputError) -> InvalidInputError:
    message = error.message
    for argument, flag in CLI_FLAGS.items():
        message = re.sub(rf"\b{argument}\b", flag, message)
    if message == error.message:
        return error
    return type(error)(message, field=CLI_FLAGS.get(error.field or "", error.field))


@command("add", "add a contact: add 312-555-0123 \"Contact7\"",
         arg("positional", nargs="*", metavar="NUMBER NAME", help="a number and a name, in either order"),
         arg("--name"), arg("--number"), *CONTACT_OPTIONS)
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


@command("contacts", "list contacts, or `contacts import FILE.csv`",
         arg("action", nargs="?", choices=["list", "import"], default="list"),
         arg("file", nargs="?", help="CSV file for import"))
def _contacts(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    if options.action == "import":
        if not options.file:
            raise InvalidInputError("contacts import needs a file: contacts import FILE.csv")
        result = _invoke(runtime, "import_contacts", {"path": options.file})
        return result, lambda r: f"imported {len(r['imported'])} contacts"
    if options.file:
        raise InvalidInputError(f"unexpected argument {options.file!r} for `contacts`")
    return _invoke(runtime, "list_contacts", {}), lambda r: render.contact_table(r["contacts"])


@command("store", "the store itself: `store migrate` (apply pending migrations), `store export FILE`, "
         "`store import FILE` (into an empty store)",
         arg("action", choices=["migrate", "export", "import"]),
         arg("file", nargs="?", help="export/import: the JSON file written or read"),
         arg("--url", help="migrate: this PostgreSQL database instead of the configured store"))
def _store(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    if options.action == "migrate":
        return _store_migrate(options, runtime)
    if options.url is not None:
        raise InvalidInputError(f"store {options.action} moves the configured store's data; --url is for "
                                "`store migrate` (set store.url / TWILIO_CALLER_DATABASE_URL instead)")
    if not options.file:
        raise InvalidInputError(f"store {options.action} needs a file: store {options.action} FILE.json")
    from pathlib import Path

    from twilio_caller.store.transfer import export_to, import_from

    path = Path(options.file)
    move = export_to if options.action == "export" else import_from
    rows = move(runtime.store, path)
    verb = "exported to" if options.action == "export" else "imported from"
    return {"rows": rows, "file": str(path)}, lambda r: (
        f"{verb} {r['file']}: " + ", ".join(f"{count} {table}" for table, count in r["rows"].items()))


def _store_migrate(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    from twilio_caller.config import ensure_home
    from twilio_caller.store.opening import migrate_store

    if options.file:
        raise InvalidInputError(f"unexpected argument {options.file!r}: store migrate takes no file")
    if options.url is not None and not re.fullmatch(r"postgres(ql)?://\S+", options.url):
        raise InvalidInputError("store migrate --url needs a PostgreSQL URL: postgresql://user@host:port/dbname")
    url = options.url or runtime.settings.store.url
    if not url:
        ensure_home(runtime.home)
    store, applied = migrate_store(runtime.config.database_path, url)
    return {"store": store, "applied": applied}, lambda r: (
        f"{r['store']}: applied " + ", ".join(r["applied"]) if r["applied"] else f"{r['store']}: up to date")


@command("update", "change a contact (an empty value clears a field)",
         arg("name"), arg("--number"),
         arg("--opt-in", action="store_true", help="let a contact who opted out be called again (on their word only)"),
         *CONTACT_OPTIONS)
def _update(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    changes = {"number": options.number, "timezone": options.timezone,
               "voice": options.voice, "notes": options.notes}
    if all(value is None for value in changes.values()) and not options.opt_in:
        raise InvalidInputError(
            "nothing to change: give --number, --timezone, --voice, --notes or --opt-in"
        )
    if options.opt_in:
        changes["opt_in"] = True
    contact = _invoke(runtime, "update_contact", {"name": options.name, **changes})
    return contact, lambda c: f"updated {c['name']}\n" + render.contact_table([c])


@command("remove", "remove a contact", arg("name"))
def _remove(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    result = _invoke(runtime, "remove_contact", {"name": options.name})
    return result, lambda r: f"removed {r['removed']['name']} ({r['removed']['number']})"


@command("rename", "rename a contact", arg("old"), arg("new"))
def _rename(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    contact = _invoke(runtime, "update_contact", {"name": options.old, "new_name": options.new})
    return contact, lambda c: f"renamed {options.old} to {c['name']}"


@command("calls", "the call log, newest first; `calls purge` deletes transcripts",
         arg("action", nargs="?", choices=["list", "purge", "reconcile"], default="list"),
         arg("--older-than", type=int, metavar="DAYS", help="purge: calls older than DAYS"),
         arg("--contact"), arg("--status"), arg("--since", help="ISO date or time, today or yesterday"),
         arg("--limit", type=int, default=20),
         arg("--simulate", action="store_true", help="reconcile: start a simulate-mode server when none runs"))
def _calls(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    if options.action == "reconcile":
        how = _invocation(runtime, options.simulate)
        return _invoke(runtime, "reconcile_calls", {}, how), render.reconciled_text
    if options.action == "purge":
        if options.older_than is None and options.contact is None:
            raise InvalidInputError("calls purge: say what to purge: --older-than DAYS, --contact NAME, or both")
        result = _invoke(runtime, "purge_calls", {"older_than_days": options.older_than,
                                                  "contact": options.contact})
        return result, lambda r: (f"purged {r['purged']['turns']} transcript lines "
                                  f"and {r['purged']['events']} status records")
    result = _invoke(runtime, "list_calls", {
        "contact": options.contact, "status": options.status,
        "since": options.since, "limit": options.limit,
    })
    return result, lambda r: render.call_table(r["calls"])


@command("latency", "p50/p95 of pickup-to-first-audio and each turn's stages over recent calls",
         arg("--limit", type=int, default=50, help="how many of the latest calls (default 50)"))
def _latency(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    return _invoke(runtime, "call_latency", {"limit": options.limit}), render.latency_table


@command("config", "show the configuration, or write an example",
         arg("action", choices=["show", "init", "path"]),
         arg("--force", action="store_true", help="init: replace an existing file"))
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
    return shown, render.config_text


@command("tool", "run any tool of skill.yaml with JSON arguments",
         arg("name"),
         arg("--args", default="{}", metavar="JSON", help="the arguments as a JSON object, or - to read them from stdin"))
def _tool(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, None]:
    from twilio_caller.manifest import invoke

    text = sys.stdin.read() if options.args == "-" else options.args
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--args is not valid JSON: {exc.msg} at column {exc.colno}") from exc
    return invoke(options.name, arguments, runtime), None


@command("tools", "list the tools of skill.yaml, or export their definitions",
         arg("--format", choices=["manifest", "openai", "openai-responses", "anthropic", "mcp"],
             help="print the tool definitions for this runtime, as JSON"),
         arg("--strict", action="store_true", help="strict-mode schemas (openai, openai-responses, anthropic)"))
def _tools(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str] | None]:
    if options.strict and not options.format:
        raise InvalidInputError("--strict needs --format openai, openai-responses or anthropic", field="strict")
    if options.format:
        from twilio_caller.export import export

        return export(options.format, strict=options.strict), None  # always JSON: for a program
    from twilio_caller.manifest import load_manifest

    tools = [
        {"name": spec.name, "description": spec.description, "side_effecting": spec.side_effecting}
        for spec in load_manifest().tools.values()
    ]
    return {"tools": tools}, lambda r: "\n".join(
        f"{t['name']:<16} {t['description']}" for t in r["tools"]
    )


@command("do", "do what a sentence says: do \"call Contact1 and tell her I'll be late\"",
         arg("text", nargs="+", help="the sentence (quoted, or as separate words)"),
         arg("--dry-run", action="store_true", help="parse only; for a call, check the contact and the safety rules"),
         arg("--simulate", action="store_true", help="use the built-in offline Twilio simulator (no account needed)"))
def _do(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    how = _invocation(runtime, options.simulate, None if options.json or options.dry_run else render.show_progress)
    result = _invoke(runtime, "run_command", {"text": " ".join(options.text), "dry_run": options.dry_run}, how)
    return result, render.do_text


listed("mcp", "serve every tool over MCP on stdin/stdout (for MCP clients)")


@command("call", "phone someone: call Contact1 \"I'll be late\" [--interactive]",
         arg("positional", nargs="*", metavar="TO MESSAGE", help="a contact name or number, then the message"),
         arg("--to", "--number", dest="to", help="contact name or phone number"),
         arg("--message"),
         arg("--interactive", nargs="?", const=True, default=False, type=_boolean,
             help="listen for the answer (also --interactive=false)"),
         arg("--keep-open", action="store_true", help="keep the call open for say/hangup"),
         arg("--voice"),
         arg("--language", help="speech-recognition language, e.g. en-US"),
         arg("--engine", choices=("gather", "relay"),
             help="gather (TwiML) or relay (ConversationRelay); default conversation.engine"),
         arg("--closing", help="said before hanging up after the answer"),
         arg("--dry-run", action="store_true", help="check contact and safety only"),
         arg("--no-wait", "--detach", dest="no_wait", action="store_true",
             help="return once the call is placed (Ctrl-C then leaves the call alone)"),
         arg("--timeout", type=float, default=50, help="longest wait in seconds (default 50)"),
         arg("--send-digits", metavar="DIGITS",
             help="DTMF tones once answered, before speaking (a phone menu; w = pause)"),
         arg("--at", metavar="WHEN",
             help="call later: 2026-12-01T09:00, \"in 20 minutes\", \"tomorrow at 9am\", \"tonight\""),
         arg("--when-allowed", action="store_true",
             help="outside the calling hours, schedule the call for when they allow it"),
         arg("--retry", type=int, metavar="ATTEMPTS",
             help="attempts in all when the line is busy, unanswered, failed or voicemail"),
         arg("--retry-spacing", type=float, metavar="MINUTES", help="minutes between attempts (10)"),
         *SIMULATE_OPTIONS)
def _call(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    given = list(options.positional)
    to = options.to or (given.pop(0) if given else None)
    message = options.message or (" ".join(given) if given else None)
    if not to or not message:
        raise InvalidInputError(
            "call needs someone to call and a message: call Contact1 \"I'll be late\" "
            "or call --number=3125550123 --message=\"Thanks!\""
        )
    if options.message and given and options.to is None:
        raise InvalidInputError(f"unexpected words {' '.join(given)!r}: the message is given by --message")
    placed: dict[str, str] = {}

    def progress(event: dict[str, Any]) -> None:
        if event.get("call_id"):
            placed["call_id"] = str(event["call_id"])
        if not options.json:
            render.show_progress(event)

    how = _simulation(options, runtime, progress=None if options.dry_run else progress)
    try:
        result = _invoke(runtime, "call", {
            "to": to, "message": message, "interactive": options.interactive,
            "keep_open": options.keep_open, "voice": options.voice, "language": options.language,
            "closing": options.closing, "dry_run": options.dry_run, "wait": not options.no_wait,
            "timeout_seconds": options.timeout, "send_digits": options.send_digits,
            "at": options.at, "when_allowed": options.when_allowed or None, "retry": _retry(options),
            "engine": options.engine,
        }, how)
    except KeyboardInterrupt:
        if "call_id" in placed:
            _cancel(runtime, placed["call_id"], options.closing or runtime.settings.conversation.closing)
        raise
    return result, render.call_text


def _cancel(runtime: Runtime, call_id: str, closing: str) -> None:
    """Ctrl-C on a waiting call: a ringing call is canceled, an answered one hung up with the
    closing line. Either way the call_id and how to follow it are printed."""
    print(f"\ninterrupted: ending call {call_id} …", file=sys.stderr, flush=True)
    try:
        ended = _invoke(runtime, "hangup", {"call_id": call_id, "message": closing})
        outcome = f"call {call_id} {ended['status']}"
    except TwilioCallerError as exc:
        outcome = f"call {call_id}: {exc.message}"
    print(f"{outcome}; see it with `twilio-caller status {call_id}`", file=sys.stderr, flush=True)


def _retry(options: argparse.Namespace) -> dict[str, Any] | None:
    if options.retry is None and options.retry_spacing is None:
        return None
    retry: dict[str, Any] = {"attempts": options.retry if options.retry is not None else 3}
    if options.retry_spacing is not None:
        retry["spacing_minutes"] = options.retry_spacing
    return retry


@command("scheduled", "list scheduled calls, or cancel one: scheduled --cancel ID",
         arg("--all", action="store_true", help="include finished ones"),
         arg("--cancel", metavar="SCHEDULED_ID"))
def _scheduled(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    if options.cancel:
        return (_invoke(runtime, "cancel_scheduled", {"scheduled_id": options.cancel}),
                lambda r: render.scheduled_text(r["canceled"]))
    listed = _invoke(runtime, "list_scheduled", {"include_finished": options.all})
    return listed, lambda r: render.scheduled_table(r["scheduled"])


def _invocation(runtime: Runtime, simulate: bool, progress: Progress | None = None) -> Invocation:
    """How this command runs: simulated when --simulate (or TWILIO_CALLER_SIMULATE) says so."""
    default = Invocation.from_environment(runtime.environ)
    return Invocation(simulate=default.simulate or simulate, progress=progress)


def _simulation(options: argparse.Namespace, runtime: Runtime, *, progress: Progress | None) -> Invocation:
    if options.callee and not options.simulate:
        raise InvalidInputError("--callee needs --simulate (it scripts the simulated callee)")
    how = _invocation(runtime, options.simulate, progress)
    return dataclasses.replace(how, callee=_callee_script(options.callee)) if options.callee else how


def _callee_script(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as stream:
            script = yaml.safe_load(stream)
    except OSError as exc:
        raise InvalidInputError(f"cannot read the callee script {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"the callee script {path} is not valid YAML: {exc}") from exc
    if not isinstance(script, dict):
        raise InvalidInputError(f"the callee script {path} must be a mapping (answer:, replies:, ...)")
    return script


@command("say", "speak into a live call and return the next reply",
         arg("call_id"), arg("message"),
         arg("--no-reply", action="store_true", help="do not wait for a reply"),
         arg("--language", help="the line's language when not the call's, e.g. es-ES"),
         arg("--timeout", type=float, default=50))
def _say(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    result = _invoke(runtime, "say", {"call_id": options.call_id, "message": options.message,
                                      "expect_reply": not options.no_reply, "language": options.language,
                                      "timeout_seconds": options.timeout})
    return result, render.call_text


@command("wait", "listen to a live call until the next reply or its end",
         arg("call_id"), arg("--until", choices=["reply", "end"], default="reply"),
         arg("--timeout", type=float, default=50))
def _wait(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    result = _invoke(runtime, "wait", {"call_id": options.call_id, "until": options.until,
                                       "timeout_seconds": options.timeout})
    return result, render.call_text


@command("hangup", "end a live call, optionally with a goodbye", arg("call_id"), arg("message", nargs="?"))
def _hangup(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    result = _invoke(runtime, "hangup", {"call_id": options.call_id, "message": options.message})
    return result, render.call_text


@command("press", "press keys (DTMF) in a live call, e.g. a phone menu", arg("call_id"), arg("digits"))
def _press(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    result = _invoke(runtime, "press", {"call_id": options.call_id, "digits": options.digits})
    return result, render.call_text


@command("phrases", "ElevenLabs phrase library: phrases generate | phrases list",
         arg("action", nargs="?", choices=["list", "generate"], default="list"))
def _phrases(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    import asyncio

    from twilio_caller import audio
    from twilio_caller.conversation import NOTIFY_GOODBYE, REPROMPT, SILENCE_GOODBYE

    library = audio.AudioLibrary.from_config(runtime.config)
    if options.action == "list":
        return {"phrases": audio.list_cached(library)}, render.phrase_table
    texts = audio.phrases_from_settings(runtime.config.settings, extra=[NOTIFY_GOODBYE, REPROMPT, SILENCE_GOODBYE])

    async def generate() -> list[dict[str, Any]]:
        try:
            return await audio.generate_phrases(library, texts, render.phrase_progress)
        finally:
            await library.aclose()

    return {"phrases": asyncio.run(generate())}, render.phrase_summary


@command("status", "the state of a call", arg("call_id"))
def _status(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    return _invoke(runtime, "call_status", {"call_id": options.call_id}), render.call_text


@command("serve", "run the server in the foreground (webhook, control API)",
         arg("--background", action="store_true", help=argparse.SUPPRESS),
         arg("--time-scale", type=float, default=1.0, help="simulate mode: speed up the simulated callee"),
         arg("--simulate", action="store_true", help="place calls on the built-in offline Twilio simulator"),
         arg("--instance", metavar="ID", help="one instance of a shared deployment (several servers on one "
             "PostgreSQL database behind a balancer): its id, unique in the deployment"),
         arg("--store", metavar="URL", help="the deployment's database (postgresql://…; else store.url)"),
         arg("--host", default="0.0.0.0", help="--instance: the address the balancer reaches (default 0.0.0.0)"),  # noqa: S104
         arg("--port", type=int, default=8080, help="--instance: the webhook port (default 8080)"),
         arg("--public-url", metavar="URL", help="--instance: the balancer's public base URL (else public_url)"))
def _serve(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    from twilio_caller.server.runner import ServerRunner, serve_forever

    if options.time_scale <= 0:
        raise InvalidInputError("--time-scale must be positive")
    runtime, deployment = _deployment(options, runtime)
    runner = ServerRunner(runtime, simulate=options.simulate, idle_exit=options.background and deployment is None,
                          time_scale=options.time_scale, deployment=deployment)
    if not options.background:
        print(f"twilio-caller server ({runner.mode} mode) starting; Ctrl-C stops it", file=sys.stderr)
    serve_forever(runner)
    return {"stopped": True, **runner.info}, lambda r: "server stopped"


def _deployment(options: argparse.Namespace, runtime: Runtime) -> tuple[Runtime, Any]:
    """`serve --instance ID`: the runtime with the flags' store and public URL, and where the
    instance listens. Without --instance, the flags of a shared deployment are refused."""
    import re

    from twilio_caller.runtime import Runtime
    from twilio_caller.server.runner import Deployment

    if options.instance is None:
        if options.store or options.public_url:
            raise InvalidInputError("--store and --public-url belong to a shared deployment: add --instance ID")
        return runtime, None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", options.instance):
        raise InvalidInputError("--instance: 1 to 40 letters, digits, '.', '_' or '-', starting with a "
                                "letter or digit", field="instance")
    if not 0 <= options.port <= 65535:
        raise InvalidInputError("--port must be between 0 and 65535", field="port")
    overrides = {name: value for name, value in (("TWILIO_CALLER_DATABASE_URL", options.store),
                                                 ("TWILIO_CALLER_PUBLIC_URL", options.public_url)) if value}
    shared = Runtime(runtime.home, clock=runtime.clock, environ={**runtime.environ, **overrides})
    shared.config.settings  # noqa: B018 - a bad --store or --public-url is refused before anything starts
    return shared, Deployment(options.instance, options.host, options.port)


@command("server", "the background server: status, stop, logs",
         arg("action", choices=["status", "stop", "logs"]),
         arg("--force", action="store_true", help="stop: even with live calls (the next server takes them back)"),
         arg("--hangup", action="store_true",
             help="stop: first hang up the live calls politely, with the closing line"))
def _server(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    from twilio_caller.server.client import find_server

    running = find_server(runtime.home)
    if options.action == "logs":
        log = runtime.home / "logs" / "server.log"
        text = log.read_text(errors="replace")[-20_000:] if log.exists() else ""
        return {"path": str(log), "log": text}, lambda r: r["log"].rstrip() or f"no log yet at {r['path']}"
    if running is None:
        return {"running": False}, lambda r: "no server is running"
    if options.action == "stop":
        _end_live_calls(runtime, running, force=options.force, hang_up=options.hangup)
        running.stop()
        return {"running": False, "stopped": running.info["pid"]}, lambda r: f"stopped server {r['stopped']}"
    health = running.health() or {}
    info = {key: value for key, value in running.info.items() if key not in ("token", "fingerprint")}
    status = {"running": True, **info, "live_calls": health.get("live_calls", 0),
              **_currency(running.info, runtime)}
    return status, render.server_status_text


def _currency(info: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """Whether the server runs with the settings this environment and config file give."""
    from twilio_caller.server.settings import changed, fingerprint, fixed_settings

    differs = changed(info.get("fingerprint"), fingerprint(fixed_settings(runtime.config, info.get("mode", ""))))
    return {"current": not differs, "differs": differs}


def _end_live_calls(runtime: Runtime, running: Any, *, force: bool, hang_up: bool) -> None:
    """A server with live calls stops only when told what to do with them."""
    live = (running.health() or {}).get("live_call_ids", [])
    if not live or force:
        return
    if not hang_up:
        raise ConflictError(
            f"the server has {len(live)} live call(s): {', '.join(live)}. "
            "`server stop --hangup` ends them politely first; `server stop --force` stops anyway "
            "(the next server takes them back)"
        )
    closing = runtime.settings.conversation.closing
    for call_id in live:
        try:
            _invoke(runtime, "hangup", {"call_id": call_id, "message": closing})
        except InvalidInputError:
            pass  # it ended meanwhile


@command("doctor", "check this machine is ready for real calls, with fixes",
         arg("--online", action="store_true", help="also check the credentials with Twilio"))
def _doctor(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    from twilio_caller import doctor

    return doctor.run(runtime, online=options.online), render.doctor_text


@command("safety", "the safety rules in force and today's usage per contact")
def _safety(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    return _invoke(runtime, "safety_rules", {}), render.safety_text


@command("demo", "a simulated call, offline, with no account",
         arg("--type", action="store_true", help="you play the callee: type what they say"),
         arg("--engine", choices=["gather", "relay"], default="gather",
             help="the conversation engine: gather (TwiML turns) or relay (ConversationRelay)"))
def _demo(options: argparse.Namespace, runtime: Runtime) -> tuple[Any, Callable[[Any], str]]:
    from twilio_caller.demo import run_demo

    result = run_demo(typed=options.type, show=render.show_progress, engine=options.engine)
    return result, lambda r: "\nthe tool result an agent gets:\n" + json.dumps(r, indent=2, ensure_ascii=False)


listed("simulator", "run the offline Twilio simulator (see simulator --help)")


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
