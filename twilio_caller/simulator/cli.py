"""`twilio-caller simulator`: serve an offline Twilio on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TextIO

from twilio_caller.simulator.callee import CalleeBook, load_callee_book
from twilio_caller.simulator.core import Simulator
from twilio_caller.simulator.errors import SimulatorError
from twilio_caller.simulator.runner import SimulatorServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twilio-caller simulator",
        description="Serve an offline Twilio (REST Calls API and voice engine) for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8099, help="port to listen on; 0 picks a free one (default 8099)")
    parser.add_argument("--callees", metavar="FILE", help="YAML file mapping numbers to callee scripts")
    parser.add_argument("--time-scale", type=float, default=1.0, help="callee time runs this many times faster")
    parser.add_argument("--account-sid", help="account SID to accept (default: a new AC… SID)")
    parser.add_argument("--auth-token", help="auth token to accept and sign with (default: a new random token)")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        simulator = _simulator(args)
        asyncio.run(_serve(simulator, args.host, args.port, sys.stdout))
    except SimulatorError as error:
        print(f"twilio-caller simulator: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the event loop runs, or a second one while it stops
        pass
    print("simulator stopped", file=sys.stderr)
    return 0


def _simulator(args: argparse.Namespace) -> Simulator:
    if not 0 <= args.port <= 65535:
        raise SimulatorError(f"--port must be between 0 and 65535, not {args.port}")
    if args.time_scale <= 0:
        raise SimulatorError(f"--time-scale must be positive, not {args.time_scale:g}")
    if args.account_sid is not None and not _is_account_sid(args.account_sid):
        raise SimulatorError("--account-sid must be AC followed by 32 hex digits")
    if args.auth_token is not None and not args.auth_token:
        raise SimulatorError("--auth-token must not be empty")
    book = load_callee_book(args.callees) if args.callees else CalleeBook()
    return Simulator(
        account_sid=args.account_sid, auth_token=args.auth_token, time_scale=args.time_scale, callees=book
    )


def _is_account_sid(value: str) -> bool:
    return len(value) == 34 and value.startswith("AC") and all(c in "0123456789abcdefABCDEF" for c in value[2:])


async def _serve(simulator: Simulator, host: str, port: int, out: TextIO) -> None:
    ctrl_c = _ctrl_c_event()
    try:
        async with SimulatorServer(simulator, host, port) as server:
            _announce(server.base_url, simulator, out)
            await ctrl_c.wait()
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)


def _ctrl_c_event() -> asyncio.Event:
    """An event the first Ctrl-C sets; a second one interrupts the shutdown (KeyboardInterrupt).

    SIGINT gets a handler of its own: asyncio.run stops on it only while SIGINT has Python's
    default handler, and a process started with SIGINT ignored (a script's background job, and
    all it starts) keeps it ignored, so Ctrl-C would never stop the simulator."""
    loop = asyncio.get_running_loop()
    ctrl_c = asyncio.Event()

    def first_ctrl_c() -> None:
        loop.remove_signal_handler(signal.SIGINT)  # back to Python's default handler
        ctrl_c.set()

    loop.add_signal_handler(signal.SIGINT, first_ctrl_c)
    return ctrl_c


def _announce(base_url: str, simulator: Simulator, out: TextIO) -> None:
    out.write(
        f"Twilio simulator listening on {base_url}\n"
        f"  account SID: {simulator.account_sid}\n"
        f"  auth token:  {simulator.auth_token}\n"
        f"  time scale:  {simulator.time_scale:g}\n"
        "Point the twilio SDK at it:\n"
        f"  client = Client('{simulator.account_sid}', '<auth token>', environment={{'TWILIO_SIMULATOR': '1'}})\n"
        f"  client.api.base_url = '{base_url}'\n"
        f"or set TWILIO_API_BASE_URL={base_url} for twilio-caller.\n"
        "Press Ctrl-C to stop.\n"
    )
    out.flush()
