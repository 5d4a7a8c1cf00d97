"""ElevenLabs audio against a stand-in for the API on 127.0.0.1: the request it receives, the
disk cache, the latency budget, every fallback, the audio route (type, HEAD, Range, 404s) and
the phrase library. The stand-in records requests and answers as the test tells it: audio,
401/429/500/422, something that isn't audio, slowly (until the test sets an event) or never."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from twilio_caller.audio import (
    Audio,
    AudioLibrary,
    Fallback,
    SynthesisError,
    audio_routes,
    generate_phrases,
    list_cached,
    mp3_frame_length,
    phrases_from_settings,
)
from twilio_caller.config import load_config
from twilio_caller.errors import ConfigError, InvalidInputError
from twilio_caller.settings import ElevenLabsSettings
from twilio_caller.simulator.runner import Server

from elevenlabs_standin import API_KEY, MP3, VOICE_ID, StandIn


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    fake = StandIn()
    async with Server(fake.app) as server:
        fake.base_url = server.base_url
        yield fake
        fake.release.set()  # a request still held ("never") is let go before the server stops


# The latency budget of a library the tests make: far beyond any answer of the stand-in, so
# only the tests about the budget (which pass their own, or a stand-in that never answers) see
# a timeout. With the 1.5 s default, a busy machine made "timeout" the answer to tests about
# errors, bad audio and the cache.
UNHURRIED_SECONDS = 60.0


@pytest.fixture
async def make_library(home: Path, stand_in: StandIn) -> AsyncIterator[Callable[..., AudioLibrary]]:
    made: list[AudioLibrary] = []

    def make(**overrides: Any) -> AudioLibrary:
        options = {key: overrides.pop(key) for key in ("request_timeout",) if key in overrides}
        settings = ElevenLabsSettings(**{
            "api_base_url": stand_in.base_url, "api_key": API_KEY, "voice_id": VOICE_ID,
            "model": "eleven_flash_v2_5", "budget_seconds": UNHURRIED_SECONDS, **overrides,
        })
        made.append(AudioLibrary(home, settings, **options))
        return made[-1]

    yield make
    for library in made:
        await library.aclose()


@pytest.fixture
def library(make_library: Callable[..., AudioLibrary]) -> AudioLibrary:
    return make_library()


# -- generation and the cache ---------------------------------------------------------------------

async def test_the_api_gets_the_text_voice_model_and_a_phone_format(library: AudioLibrary, stand_in: StandIn) -> None:
    audio = await library.get_or_generate("  Thanks   for calling. ")
    assert isinstance(audio, Audio) and not audio.from_cache
    assert audio.media_type == "audio/mpeg" and audio.path.read_bytes() == MP3
    [request] = stand_in.requests
    assert request["voice_id"] == VOICE_ID
    assert request["query"] == {"output_format": "mp3_22050_32"}
    assert request["headers"]["xi-api-key"] == API_KEY
    assert request["json"] == {"text": "Thanks for calling.", "model_id": "eleven_flash_v2_5"}


async def test_the_second_time_comes_from_disk_even_after_a_restart(
    make_library: Callable[..., AudioLibrary], stand_in: StandIn
) -> None:
    first = await make_library().get_or_generate("Have a great day.")
    again = await make_library().get_or_generate("Have a  great day.", budget_seconds=0)
    assert isinstance(first, Audio) and isinstance(again, Audio)
    assert again.from_cache and again.path == first.path
    assert len(stand_in.requests) == 1


async def test_voice_model_format_and_settings_each_key_the_cache(
    make_library: Callable[..., AudioLibrary], stand_in: StandIn
) -> None:
    text = "I'll relay that message."
    paths = set()
    for overrides in ({}, {"voice_id": "other"}, {"model": "eleven_multilingual_v2"},
                      {"voice_settings": {"stability": 0.4}}):
        audio = await make_library(**overrides).get_or_generate(text)
        assert isinstance(audio, Audio)
        paths.add(audio.path)
    assert len(paths) == 4 and len(stand_in.requests) == 4
    assert stand_in.requests[-1]["json"]["voice_settings"] == {"stability": 0.4}


async def test_cache_files_are_written_whole_private_and_named_without_secrets(
    library: AudioLibrary, home: Path
) -> None:
    audio = await library.get_or_generate("Goodbye.")
    assert isinstance(audio, Audio)
    names = {path.name for path in (home / "audio").iterdir()}
    assert names == {audio.file_name, f"{audio.key}.json"}  # no temporary file left behind
    assert os.stat(audio.path).st_mode & 0o777 == 0o600
    assert os.stat(home / "audio").st_mode & 0o777 == 0o700
    for path in (home / "audio").iterdir():
        assert API_KEY not in path.name and API_KEY.encode() not in path.read_bytes()


async def test_mu_law_is_stored_as_a_wav_twilio_can_play(make_library: Callable[..., AudioLibrary], stand_in: StandIn) -> None:
    stand_in.body, stand_in.content_type = bytes(range(256)) * 4 + b"\x7f", "audio/basic"
    audio = await make_library(output_format="ulaw_8000").get_or_generate("Hello.")
    assert isinstance(audio, Audio) and audio.media_type == "audio/wav" and audio.file_name.endswith(".wav")
    assert stand_in.requests[0]["query"] == {"output_format": "ulaw_8000"}
    data = audio.path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", data[20:36])
    assert (tag, channels, rate, byte_rate, align, bits) == (7, 1, 8000, 8000, 1, 8)
    assert data.index(b"data") and stand_in.body in data


def test_mp3_frames_are_measured_from_their_headers() -> None:
    assert mp3_frame_length(bytes((0xFF, 0xF3, 0x40, 0xC0))) == 104  # MPEG-2, 32 kbit/s, 22.05 kHz
    assert mp3_frame_length(bytes((0xFF, 0xFB, 0x90, 0x64))) == 417  # MPEG-1, 128 kbit/s, 44.1 kHz
    assert mp3_frame_length(bytes((0xFF, 0xFB, 0x92, 0x64))) == 418  # … padded
    assert mp3_frame_length(b"RIFF") is None
    assert mp3_frame_length(bytes((0xFF, 0xFD, 0x90, 0x64))) is None  # layer II


# -- the budget ---------------------------------------------------------------------------------------

async def test_a_slow_api_falls_back_at_the_budget_and_fills_the_cache_for_next_time(
    library: AudioLibrary, stand_in: StandIn
) -> None:
    stand_in.mode = "slow"  # answers only once released, below: any answer before is the budget's
    answer = await library.get_or_generate("Thanks for calling.", budget_seconds=0.2)
    assert answer == Fallback("timeout", answer.detail) and "0.2 s" in answer.detail
    stand_in.release.set()
    await library.wait_for_pending()
    again = await library.get_or_generate("Thanks for calling.", budget_seconds=0)
    assert isinstance(again, Audio) and again.from_cache
    assert len(stand_in.requests) == 1


async def test_an_api_that_never_answers_never_holds_the_caller(library: AudioLibrary, stand_in: StandIn) -> None:
    stand_in.mode = "never"
    answers = await asyncio.gather(*(library.get_or_generate("Goodbye.", budget_seconds=0.1) for _ in range(3)))
    assert [answer.reason for answer in answers] == ["timeout"] * 3  # type: ignore[union-attr]
    await stand_in.arrived.wait()
    assert len(stand_in.requests) == 1  # one generation shared by every request for the text
    assert library.lookup("Goodbye.") is None


async def test_the_request_timeout_ends_background_generation(
    make_library: Callable[..., AudioLibrary], stand_in: StandIn
) -> None:
    stand_in.mode = "never"
    with pytest.raises(SynthesisError) as raised:
        await make_library(request_timeout=0.2).generate("Goodbye.")
    assert raised.value.reason == "timeout"


# -- fallbacks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, reason, says", [
    (401, "unauthorized", "ELEVENLABS_API_KEY"),
    (403, "unauthorized", "HTTP 403"),
    (429, "rate-limited", "retry after 7 s"),
    (500, "server-error", "HTTP 500"),
    (503, "server-error", "stand-in says 503"),
    (422, "rejected", "HTTP 422"),
])
async def test_api_errors_fall_back_with_their_reason(
    library: AudioLibrary, stand_in: StandIn, home: Path, status: int, reason: str, says: str
) -> None:
    stand_in.mode = status
    answer = await library.get_or_generate("Thanks for calling.")
    assert isinstance(answer, Fallback) and answer.reason == reason
    assert says in answer.detail and API_KEY not in answer.detail
    assert library.lookup("Thanks for calling.") is None
    assert not list((home / "audio").glob("*.mp3"))


@pytest.mark.parametrize("body, content_type, says", [
    (b"<html>Service unavailable</html>", "text/html", "text/html, not audio"),
    (b'{"detail": "oops"}', "application/json", "application/json, not audio"),
    (b"ID3\x03\x00\x00\x00\x00\x00\x00garbage", "audio/mpeg", "not MP3 audio"),
    (b"\xff\xf3\x40\xc0" + bytes(20), "audio/mpeg", "truncated"),
    (b"RIFF....WAVEfmt ", "audio/mpeg", "not MP3 audio"),
    ((b"\xff\xf3\x40\xc0" + bytes(100)) + b"not another frame", "audio/mpeg", "not followed"),
])
async def test_bytes_that_are_not_the_promised_audio_fall_back(
    library: AudioLibrary, stand_in: StandIn, body: bytes, content_type: str, says: str
) -> None:
    stand_in.body, stand_in.content_type = body, content_type
    answer = await library.get_or_generate("Thanks for calling.")
    assert isinstance(answer, Fallback) and answer.reason == "bad-audio" and says in answer.detail
    assert library.lookup("Thanks for calling.") is None


async def test_an_unreachable_api_falls_back(home: Path) -> None:
    from twilio_caller.serving import bind

    closed = bind("127.0.0.1", 0)
    port = closed.getsockname()[1]
    closed.close()
    library = AudioLibrary(home, ElevenLabsSettings(
        api_base_url=f"http://127.0.0.1:{port}", api_key=API_KEY, voice_id=VOICE_ID))
    try:
        answer = await library.get_or_generate("Goodbye.")
    finally:
        await library.aclose()
    assert isinstance(answer, Fallback) and answer.reason == "unreachable"


async def test_without_a_voice_or_a_key_nothing_is_asked(
    make_library: Callable[..., AudioLibrary], stand_in: StandIn
) -> None:
    assert (await make_library(voice_id=None).get_or_generate("Hi.")).reason == "disabled"  # type: ignore[union-attr]
    no_key = await make_library(api_key=None).get_or_generate("Hi.")
    assert isinstance(no_key, Fallback) and no_key.reason == "no-api-key" and "ELEVENLABS_API_KEY" in no_key.detail
    with pytest.raises(SynthesisError, match="voice_id"):
        await make_library(voice_id=None).generate("Hi.")
    assert stand_in.requests == []


async def test_text_too_long_is_a_clear_error_or_a_fallback(library: AudioLibrary, stand_in: StandIn) -> None:
    long_text = "word " * 600
    answer = await library.get_or_generate(long_text)
    assert isinstance(answer, Fallback) and answer.reason == "too-long" and "at most 2500" in answer.detail
    with pytest.raises(InvalidInputError) as raised:
        await library.generate(long_text)
    assert raised.value.field == "text"
    assert stand_in.requests == []


async def test_settings_come_from_config_and_the_key_from_the_environment(
    home: Path, write_config: Callable[..., Path], stand_in: StandIn
) -> None:
    write_config(f"elevenlabs:\n  api_base_url: {stand_in.base_url}\n  voice_id: {VOICE_ID}\n  budget_seconds: 2\n")
    config = load_config(home, {"ELEVENLABS_API_KEY": API_KEY})
    settings = config.settings.elevenlabs
    assert settings.budget_seconds == 2 and settings.output_format == "mp3_22050_32"
    assert API_KEY not in repr(settings)
    library = AudioLibrary.from_config(config)
    try:
        assert isinstance(await library.generate("Hello."), Audio)  # no budget: the request itself
    finally:
        await library.aclose()
    assert stand_in.requests[0]["headers"]["xi-api-key"] == API_KEY
    assert "model_id" not in stand_in.requests[0]["json"]  # null model: the API's default


# -- serving ---------------------------------------------------------------------------------------------

@pytest.fixture
async def served(library: AudioLibrary) -> AsyncIterator[tuple[AudioLibrary, Audio, str, httpx.AsyncClient]]:
    audio = await library.get_or_generate("Thanks for calling.")
    assert isinstance(audio, Audio)
    async with Server(Starlette(routes=audio_routes(library))) as web, httpx.AsyncClient(trust_env=False) as client:
        yield library, audio, library.url_for(audio, web.base_url + "/"), client


async def test_the_audio_route_serves_the_file_with_its_type(served: Any) -> None:
    library, audio, url, client = served
    assert f"/audio/{library.token}/{audio.key}.mp3" in url
    response = await client.get(url, params={"CallSid": "CA" + "0" * 32})  # Twilio's parameters are ignored
    assert response.status_code == 200 and response.content == MP3
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["accept-ranges"] == "bytes"
    assert "immutable" in response.headers["cache-control"]


async def test_head_answers_the_headers_only(served: Any) -> None:
    _, _, url, client = served
    response = await client.head(url)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(MP3))
    assert response.headers["content-type"] == "audio/mpeg"


async def test_range_requests_get_partial_content(served: Any) -> None:
    _, _, url, client = served
    response = await client.get(url, headers={"Range": "bytes=104-207"})
    assert response.status_code == 206 and response.content == MP3[104:208]
    assert response.headers["content-range"] == f"bytes 104-207/{len(MP3)}"
    tail = await client.get(url, headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == MP3[-4:]
    beyond = await client.get(url, headers={"Range": f"bytes={len(MP3) + 10}-"})
    assert beyond.status_code == 416


async def test_anything_else_is_not_found(served: Any, home: Path) -> None:
    library, audio, url, client = served
    base = url.split("/audio/")[0]
    (home / "config.yaml").write_text("secret: true\n")
    for path in (
        f"/audio/wrong-token/{audio.file_name}",
        f"/audio/{library.token}/{'0' * 64}.mp3",
        f"/audio/{library.token}/{audio.key}.json",
        f"/audio/{library.token}/serving-token",
        f"/audio/{library.token}/..%2F..%2Fconfig.yaml",
        f"/audio/{library.token}/../../config.yaml",
        f"/audio/{library.token}/%2e%2e",
        f"/audio/{library.token}",
    ):
        response = await client.get(base + path)
        assert response.status_code == 404, path
    assert (await client.post(url)).status_code == 405


async def test_the_simulated_twilio_plays_the_url(served: Any) -> None:
    """The simulator fetches <Play> URLs exactly as Twilio does (GET with the call's
    parameters, a signature, 200 and an audio type required)."""
    from twilio_caller.simulator.chaos import Chaos
    from twilio_caller.simulator.webhook import WebhookClient

    _, _, url, _ = served
    twilio = WebhookClient("auth-token", Chaos())
    try:
        sent, seconds = await twilio.fetch_audio(url, {"CallSid": "CA" + "0" * 32, "AccountSid": "AC" + "0" * 32})
    finally:
        await twilio.aclose()
    assert sent.response.status_code == 200 and sent.response.content == MP3 and seconds > 0


async def test_the_serving_token_is_per_install_and_survives_restarts(
    make_library: Callable[..., AudioLibrary], home: Path
) -> None:
    first, second = make_library(), make_library()
    assert first.token == second.token and len(first.token) >= 32
    assert os.stat(home / "audio" / "serving-token").st_mode & 0o777 == 0o600
    (home / "audio" / "serving-token").unlink()
    assert make_library().token != first.token


# -- the phrase library -----------------------------------------------------------------------------------

async def test_phrases_are_generated_once_with_progress(library: AudioLibrary, stand_in: StandIn) -> None:
    phrases = ["Thanks for calling.", "I'll relay that message.", "Have a great day."]
    seen: list[tuple[int, int, str]] = []
    rows = await generate_phrases(library, phrases, lambda done, total, text: seen.append((done, total, text)))
    assert [row["status"] for row in rows] == ["generated"] * 3
    assert seen == [(1, 3, phrases[0]), (2, 3, phrases[1]), (3, 3, phrases[2])]
    again = await generate_phrases(library, phrases)
    assert [row["status"] for row in again] == ["cached"] * 3
    assert len(stand_in.requests) == 3
    listed = list_cached(library)
    assert sorted(row["text"] for row in listed) == sorted(phrases)
    assert all(row["current"] and row["bytes"] == len(MP3) and row["voice_id"] == VOICE_ID for row in listed)


async def test_a_failing_phrase_is_reported_and_the_rest_go_on(library: AudioLibrary, stand_in: StandIn) -> None:
    stand_in.mode = 500
    rows = await generate_phrases(library, ["One.", "Two."])
    assert [(row["status"], row["reason"]) for row in rows] == [("failed", "server-error")] * 2


async def test_a_refused_key_stops_phrase_generation(library: AudioLibrary, stand_in: StandIn) -> None:
    stand_in.mode = 401
    with pytest.raises(ConfigError, match="refused the API key"):
        await generate_phrases(library, ["One.", "Two."])
    assert len(stand_in.requests) == 1


async def test_phrase_generation_checks_before_it_starts(
    make_library: Callable[..., AudioLibrary], stand_in: StandIn
) -> None:
    with pytest.raises(ConfigError, match="ELEVENLABS_API_KEY"):
        await generate_phrases(make_library(api_key=None), ["One."])
    with pytest.raises(InvalidInputError):
        await generate_phrases(make_library(), ["One.", "x" * 3000])
    assert stand_in.requests == []


async def test_cached_audio_of_other_settings_is_listed_as_not_current(
    make_library: Callable[..., AudioLibrary]
) -> None:
    await generate_phrases(make_library(voice_id="old-voice"), ["Goodbye."])
    [row] = list_cached(make_library())
    assert row["text"] == "Goodbye." and row["voice_id"] == "old-voice" and not row["current"]


def test_phrases_come_from_config_with_names_filled_in(home: Path, write_config: Callable[..., Path]) -> None:
    write_config("identity: {assistant_name: Ada, owner_name: Sam}\n")
    phrases = phrases_from_settings(load_config(home, {}).settings, extra=["Goodbye.", "Sorry, I didn't catch that."])
    assert phrases[0] == "Hello, this is Ada, Sam's AI assistant."
    assert "Hi, this is Ada, Sam's AI assistant." in phrases  # the opening
    assert "Thanks, I'll pass that on. Goodbye." in phrases  # the closing
    assert phrases.count("Goodbye.") == 1 and "Sorry, I didn't catch that." in phrases


def test_broken_or_orphaned_sidecars_are_not_listed(home: Path) -> None:
    (home / "audio").mkdir(parents=True)
    (home / "audio" / "broken.json").write_text("{not json")
    (home / "audio" / "orphan.json").write_text(json.dumps({"text": "Hi.", "file": "a" * 64 + ".mp3"}))
    (home / "audio" / "escape.json").write_text(json.dumps({"text": "Hi.", "file": "../config.yaml"}))
    (home / "config.yaml").write_text("{}\n")
    assert list_cached(AudioLibrary(home, ElevenLabsSettings())) == []
