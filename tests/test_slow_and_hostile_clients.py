"""Clients at the HTTP listeners that are slow, stalled, oversized or speak in non-ASCII never
become a 500, a traceback or a starved server: they get a 4xx or their connection closes."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from test_webhook import Hook, keep_open
from twilio_caller.server.runfile import read_run_file
from twilio_caller.transport.twilio.requests import MAX_BODY_BYTES, read_form as _form
from twilio_caller.serving import Listener, bind

READ_SECONDS = 0.5


def test_a_non_ascii_webhook_token_is_404_and_logs_no_traceback(live_server, caplog) -> None:
    hook = Hook(live_server, keep_open(live_server), None)
    before = hook.transcript()
    with caplog.at_level(logging.ERROR):
        for token in ("tökén", "%C3%A9%E2%82%AC", "\u202e"):
            response = hook.post(hook.path("gather", token=token) + "?n=1", hook.form(SpeechResult="x"))
            assert response.status_code == 404
    assert hook.transcript() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    live_server.tool("hangup", call_id=hook.placed["call_id"])


def test_a_non_ascii_bearer_on_the_control_api_is_403(live_server) -> None:
    port = read_run_file(live_server.runtime.home)["control_port"]
    for token in ("tökén".encode(), "Bearer é€".encode(), b"\xff\xfe"):
        response = httpx.get(f"http://127.0.0.1:{port}/control/health",
                             headers={"Authorization": b"Bearer " + token}, trust_env=False)
        assert response.status_code == 403


def slow_app() -> Starlette:
    async def echo(request: Request) -> Response:
        form = await _form(request)
        return form if isinstance(form, Response) else PlainTextResponse(str(len(form)))

    return Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])


async def _serving(scenario) -> None:
    listener = Listener(slow_app(), bind("127.0.0.1", 0), read_seconds=READ_SECONDS)
    await listener.start()
    try:
        await scenario(listener.port)
    finally:
        await listener.stop()


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closed the connection (EOF) within `within` seconds."""
    try:
        while await asyncio.wait_for(reader.read(65536), within):
            pass
    except (TimeoutError, ConnectionError):
        return False
    return True


@pytest.mark.parametrize("count", [30])
def test_slow_clients_are_cut_off_and_never_starve_real_requests(count: int) -> None:
    """`count` slow clients (partial headers, stalled bodies, silent connections); the full
    size, 300, runs in bench/slow_clients.py."""

    async def scenario(port: int) -> None:
        starts = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty",  # headers never finish
                  b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 100\r\n\r\nCallSid=C",  # the body stalls
                  b"")  # connects, says nothing
        slow = []
        for n in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(starts[n % len(starts)])
            await writer.drain()
            slow.append((reader, writer))
        began = time.monotonic()
        async with httpx.AsyncClient(trust_env=False) as client:
            answers = await asyncio.gather(*(client.post(f"http://127.0.0.1:{port}/", data={"a": "1"})
                                             for _ in range(5)))
        assert [a.status_code for a in answers] == [200] * 5
        assert time.monotonic() - began < READ_SECONDS  # served while every slow client still hangs on
        closed = await asyncio.gather(*(_closed(reader, READ_SECONDS * 6) for reader, _ in slow))
        assert all(closed)
        for _, writer in slow:
            writer.close()

    asyncio.run(_serving(scenario))


def test_an_oversize_chunked_body_gets_413_and_the_connection_closes() -> None:
    async def scenario(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 8192
        try:
            for _ in range(MAX_BODY_BYTES // len(chunk) + 4):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
        except ConnectionError:
            pass  # the server may close before the client is done sending
        head = await asyncio.wait_for(reader.readline(), 5)
        assert head.startswith(b"HTTP/1.1 413")
        assert await _closed(reader, 5)
        writer.close()

    asyncio.run(_serving(scenario))


def test_a_held_answer_outlasts_the_read_deadline() -> None:
    """The deadline is for reading a request: an answer the app holds (long-poll) is not cut."""

    async def held(request: Request) -> Response:
        await request.body()
        await asyncio.sleep(READ_SECONDS * 2)
        return PlainTextResponse("late but whole")

    async def main() -> None:
        app = Starlette(routes=[Route("/", held, methods=["POST"])])
        listener = Listener(app, bind("127.0.0.1", 0), read_seconds=READ_SECONDS)
        await listener.start()
        try:
            async with httpx.AsyncClient(trust_env=False) as client:
                answer = await client.post(f"http://127.0.0.1:{listener.port}/", content=b"x", timeout=10)
            assert answer.text == "late but whole"
        finally:
            await listener.stop()

    asyncio.run(main())


def test_the_deadline_does_not_linger_on_a_keep_alive_connection() -> None:
    """After a complete request, an idle keep-alive connection is not cut by the read deadline
    (uvicorn's keep-alive timeout governs it), and the next request on it is served."""

    async def scenario(port: int) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
            await asyncio.sleep(READ_SECONDS * 2)
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200

    asyncio.run(_serving(scenario))


def test_bind_sockets_are_loopback() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.family == socket.AF_INET
    finally:
        sock.close()
