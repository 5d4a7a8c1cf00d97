"""Slow clients against the webhook's listener: --slow connections (partial headers, stalled
bodies, silent connections, in turn) are opened and held, then --requests real requests are
made while they hang. Prints one JSON line: the real requests' latency (p50, max, all
answered?) and how long until the server had cut off every slow client (its read deadline,
serving.REQUEST_READ_SECONDS unless --read-seconds). Figures, never pass/fail.

    .venv/bin/python bench/slow_clients.py --slow 300 --requests 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from twilio_caller.transport.twilio.requests import read_form as _form
from twilio_caller.serving import REQUEST_READ_SECONDS, Listener, bind

STARTS = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty",
          b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
          b"Content-Length: 100\r\n\r\nCallSid=C",
          b"")


async def form_echo(request: Request) -> Response:
    form = await _form(request)
    return form if isinstance(form, Response) else PlainTextResponse(str(len(form)))


async def until_closed(reader: asyncio.StreamReader) -> float:
    began = time.monotonic()
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    return time.monotonic() - began


async def run(slow: int, requests: int, read_seconds: float) -> dict[str, object]:
    app = Starlette(routes=[Route("/", form_echo, methods=["POST"])])
    listener = Listener(app, bind("127.0.0.1", 0), read_seconds=read_seconds)
    await listener.start()
    try:
        held = []
        for n in range(slow):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(STARTS[n % len(STARTS)])
            held.append((reader, writer))
        closing = [asyncio.ensure_future(until_closed(reader)) for reader, _ in held]
        latencies, answered = [], 0
        async with httpx.AsyncClient(trust_env=False) as client:
            for _ in range(requests):
                began = time.monotonic()
                answer = await client.post(f"http://127.0.0.1:{listener.port}/", data={"CallSid": "CA1"})
                latencies.append((time.monotonic() - began) * 1000)
                answered += answer.status_code == 200
        cut_after = await asyncio.gather(*closing)
        for _, writer in held:
            writer.close()
    finally:
        await listener.stop()
    return {
        "figure": "slow_clients", "slow_connections": slow, "read_seconds": read_seconds,
        "requests": requests, "answered": answered,
        "request_ms_p50": round(statistics.median(latencies), 2), "request_ms_max": round(max(latencies), 2),
        "all_slow_cut_off_within_s": round(max(cut_after), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--read-seconds", type=float, default=REQUEST_READ_SECONDS)
    options = parser.parse_args()
    print(json.dumps(asyncio.run(run(options.slow, options.requests, options.read_seconds))))


if __name__ == "__main__":
    main()
