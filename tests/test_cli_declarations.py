"""Each CLI command is declared right above its handler; the parser is built from those
declarations, once each, in the order `--help` lists them."""

from __future__ import annotations

import inspect

from twilio_caller import cli


def test_every_command_is_declared_once_and_parsed_with_its_handler() -> None:
    names = [declared.name for declared in cli.COMMANDS]
    assert len(names) == len(set(names))
    parser = cli.build_parser()
    for declared in cli.COMMANDS:
        if declared.handler is None:
            continue
        options = parser.parse_args([declared.name, *_required(declared)])
        assert options.command == declared.name and options.handler is declared.handler


def test_the_commands_run_before_parsing_are_listed_in_help() -> None:
    listed = [declared.name for declared in cli.COMMANDS if declared.handler is None]
    assert listed == ["mcp", "simulator"]
    assert all(name in cli.build_parser().format_help() for name in listed)


def test_each_declaration_sits_right_above_its_handler() -> None:
    source = inspect.getsource(cli)
    for declared in cli.COMMANDS:
        if declared.handler is None:
            continue
        above = source[:source.index(f"\ndef {declared.handler.__name__}(")]
        assert above.rfind(f'@command("{declared.name}"') > above.rfind("\ndef "), declared.name


def _required(declared: cli.Command) -> list[str]:
    """Placeholder values for a command's required positional arguments (choices: the first)."""
    values = []
    for argument in declared.arguments:
        flag = argument.flags[0]
        if flag.startswith("-") or argument.options.get("nargs") in ("?", "*"):
            continue
        values.append(argument.options.get("choices", ["x"])[0])
    return values
