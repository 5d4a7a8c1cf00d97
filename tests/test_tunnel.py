"""The public base URL: an ngrok tunnel through the real pyngrok code path, with a stand-in
ngrok executable (tests/fake_ngrok.py) that speaks ngrok v3's startup log and local agent API
on 127.0.0.1; a configured public_url; or the local address. Nothing here reaches ngrok's
service or the internet."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from twilio_caller.config import Config, load_config
from twilio_caller.errors import ConfigError
from twilio_caller.tunnel import (
    Tunnel,
    find_ngrok,
    ngrok_config_file,
    open_public_url,
    open_public_url_sync,
)

FAKE_NGROK = Path(__file__).with_name("fake_ngrok.py")
TOKEN = "2fAkEtOkEn0123456789_abcdefGHIJ"
LOCAL = "http://127.0.0.1:8888"


@pytest.fixture
def ngrok_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable named ngrok that runs the stand-in with this interpreter."""
    directory = tmp_path / "bin"
    directory.mkdir()
    path = directory / "ngrok"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_NGROK}" "$@"\n')
    path.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))  # no real ngrok is found by accident
    monkeypatch.delenv("PYNGROK_NGROK_PATH", raising=False)
    return path


@pytest.fixture
def events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """What the stand-in saw: one dict per event (start, create, delete)."""
    record = tmp_path / "fake-ngrok-events.jsonl"
    monkeypatch.setenv("FAKE_NGROK_RECORD", str(record))
    for variable in ("FAKE_NGROK_REJECT_TOKEN", "FAKE_NGROK_DOMAINS", "FAKE_NGROK_FOREIGN_DOMAINS",
                     "FAKE_NGROK_HANG", "FAKE_NGROK_OLD"):
        monkeypatch.delenv(variable, raising=False)

    def read(kind: str | None = None) -> list[dict[str, Any]]:
        if not record.exists():
            return []
        lines = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
        return [line for line in lines if kind is None or line["event"] == kind]

    return read


@pytest.fixture
def ngrok_config(home: Path, write_config):
    def make(extra: str = "", token: str | None = TOKEN) -> Config:
        text = "tunnel:\n  provider: ngrok\n" + extra
        if token is not None:
            text += f"  authtoken: {json.dumps(token)}\n"
        write_config(text)
        return load_config(home)

    return make


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


async def test_ngrok_tunnel_gives_its_https_url_and_the_token_goes_only_through_a_0600_file(
    ngrok_bin: Path, events, ngrok_config, home: Path
) -> None:
    config = ngrok_config()
    tunnel = await open_public_url(config, LOCAL, 8888, home, ngrok_path=str(ngrok_bin))
    try:
        assert tunnel.provider == "ngrok"
        assert tunnel.public_url.startswith("https://") and tunnel.public_url.endswith(".ngrok-free.app")
        [start] = events("start")
        argv = start["argv"]
        assert argv[:4] == ["start", "--none", "--log", "stdout"]
        assert TOKEN not in " ".join(argv) and "--authtoken" not in argv
        assert TOKEN not in _cmdline(start["pid"])  # what `ps` shows
        assert start["token"] == TOKEN and start["token_source"] == "config"
        config_file = Path(argv[argv.index("--config") + 1])
        assert config_file == ngrok_config_file(home)
        assert start["config_mode"] == "0o600"
        assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
        [create] = events("create")
        assert create["body"]["upstream"] == {"url": "http://127.0.0.1:8888"}
        assert "url" not in create["body"]  # no reserved domain asked for
        assert create["answer"]["url"] == tunnel.public_url
        assert _alive(start["pid"])
    finally:
        await tunnel.close()
    assert tunnel.closed
    assert not _alive(start["pid"])
    assert [event["found"] for event in events("delete")] == [True]  # the endpoint was closed first
    assert not config_file.exists()  # the token does not stay on disk
    await tunnel.close()  # twice is harmless


async def test_token_from_NGROK_AUTHTOKEN_reaches_ngrok_but_never_its_command_line(
    ngrok_bin: Path, events, ngrok_config, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyngrok reads NGROK_AUTHTOKEN by itself and would pass it as `--authtoken TOKEN`
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    config = ngrok_config(token=None)
    assert config.get("tunnel.authtoken") == TOKEN
    tunnel = await open_public_url(config, LOCAL, 8888, home, ngrok_path=str(ngrok_bin))
    try:
        [start] = events("start")
        assert "--authtoken" not in start["argv"] and TOKEN not in " ".join(start["argv"])
        assert TOKEN not in _cmdline(start["pid"])
        assert start["token"] == TOKEN
        import yaml

        written = yaml.safe_load(ngrok_config_file(home).read_text())
        assert written == {"version": "3", "agent": {"authtoken": TOKEN}}
    finally:
        await tunnel.close()


async def test_reserved_domain_and_region_are_passed_to_ngrok(
    ngrok_bin: Path, events, ngrok_config, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NGROK_DOMAINS", "calls.example.com")
    config = ngrok_config("  domain: https://calls.example.com/\n  region: eu\n")
    tunnel = await open_public_url(config, "http://0.0.0.0:9999", 9999, home, ngrok_path=str(ngrok_bin))
    try:
        assert tunnel.public_url == "https://calls.example.com"
        [start] = events("start")
        assert start["argv"][start["argv"].index("--region") + 1] == "eu"
        [create] = events("create")
        assert create["body"]["url"] == "https://calls.example.com"
        assert create["body"]["upstream"] == {"url": "http://127.0.0.1:9999"}  # a wildcard listener
    finally:
        await tunnel.close()
    assert not _alive(start["pid"])


async def test_missing_token_says_to_set_NGROK_AUTHTOKEN_and_starts_nothing(
    ngrok_bin: Path, events, ngrok_config, home: Path
) -> None:
    config = ngrok_config(token=None)
    with pytest.raises(ConfigError) as caught:
        await open_public_url(config, LOCAL, 8888, home, ngrok_path=str(ngrok_bin))
    assert "NGROK_AUTHTOKEN" in caught.value.message and "dashboard.ngrok.com" in caught.value.message
    assert caught.value.exit_code == 5
    assert events() == []


@pytest.mark.parametrize(
    ("token", "code"),
    [("not a token!", "ERR_NGROK_105"), ("2rEvOkEdToKeN0123456789_xyz", "ERR_NGROK_107")],
)
async def test_rejected_token_is_a_clear_error_that_never_shows_the_token(
    ngrok_bin: Path, events, ngrok_config, home: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, token: str, code: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("FAKE_NGROK_REJECT_TOKEN", "2rEvOkEdToKeN0123456789_xyz")
    config = ngrok_config(token=token)
    with pytest.raises(ConfigError) as caught:
        await open_public_url(config, LOCAL, 8888, home, ngrok_path=str(ngrok_bin))
    message = caught.value.message
    assert code in message and "rejected the authtoken" in message and "NGROK_AUTHTOKEN" in message
    assert token not in message and token not in str(caught.value)
    [start] = events("start")
    assert start["token"] == token  # it did reach ngrok, which echoed it in its error ...
    assert any("Your authtoken: ****" in record.getMessage() for record in caplog.records)
    assert not any(token in record.getMessage() for record in caplog.records)  # ... masked in our logs
    assert not _alive(start["pid"])
    assert not ngrok_config_file(home).exists()


@pytest.mark.parametrize(
    ("variable", "code"),
    [("FAKE_NGROK_FOREIGN_DOMAINS", "ERR_NGROK_320"), ("FAKE_NGROK_UNUSED", "ERR_NGROK_7118")],
)
async def test_reserved_domain_of_another_account_is_a_clear_error(
    ngrok_bin: Path, events, ngrok_config, home: Path, monkeypatch: pytest.MonkeyPatch,
    variable: str, code: str,
) -> None:
    monkeypatch.setenv(variable, "someone-else.ngrok.app")
    config = ngrok_config("  domain: someone-else.ngrok.app\n")
    with pytest.raises(ConfigError) as caught:
        await open_public_url(config, LOCAL, 8888, home, ngrok_path=str(ngrok_bin))
    message = caught.value.message
    assert code in message and "someone-else.ngrok.app" in message
    assert "dashboard.ngrok.com/domains" in message and "tunnel.domain" in message
    [start] = events("start")
    assert not _alive(start["pid"])


async def test_ngrok_that_cannot_be_installed_says_how_to_install_it(
    ngrok_bin: Path, events, ngrok_config, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyngrok import installer

    # offline: pyngrok's real download code, aimed at a loopback port that refuses connections
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))  # bound, never listening
    url = f"http://127.0.0.1:{refusing.getsockname()[1]}/ngrok-v3-stable-linux-amd64.tgz"
    monkeypatch.setattr(installer, "get_ngrok_cdn_url", lambda version: url)
    target = tmp_path / "pyngrok-home" / "ngrok"
    monkeypatch.setenv("PYNGROK_NGROK_PATH", str(target))
    config = ngrok_config()
    try:
        with pytest.raises(ConfigError) as caught:
            await open_public_url(config, LOCAL, 8888, home)
    finally:
        refusing.close()
    message = caught.value.message
    assert "not installed" in message and "https://ngrok.com/download" in message
    assert "tunnel.ngrok_path" in message and "PYNGROK_NGROK_PATH" in message and "public_url" in message
    assert not target.exists() and events() == []
    assert not ngrok_config_file(home).exists()


async def test_a_configured_ngrok_path_that_does_not_exist_is_reported(ngrok_config, home: Path, tmp_path: Path) -> None:
    config = ngrok_config()
    values = json.loads(json.dumps(config.values))
    values["tunnel"]["ngrok_path"] = str(tmp_path / "no" / "ngrok")
    with pytest.raises(ConfigError, match=r"tunnel.ngrok_path is .*no/ngrok, but there is no file"):
        await open_public_url(Config(home=home, values=values), LOCAL, 8888, home)


def test_find_ngrok_prefers_the_config_key_then_PYNGROK_NGROK_PATH_then_PATH(
    ngrok_bin: Path, ngrok_config, home: Path
) -> None:
    config = ngrok_config()
    values = json.loads(json.dumps(config.values))
    values["tunnel"]["ngrok_path"] = "/opt/ngrok/ngrok"
    environ = {"PATH": str(ngrok_bin.parent), "PYNGROK_NGROK_PATH": "/env/ngrok"}
    assert find_ngrok(Config(home=home, values=values), environ) == ("/opt/ngrok/ngrok", "tunnel.ngrok_path")
    assert find_ngrok(config, environ) == ("/env/ngrok", "PYNGROK_NGROK_PATH")  # no such key in the schema yet
    assert find_ngrok(config, {"PATH": str(ngrok_bin.parent)}) == (str(ngrok_bin), "PATH")
    path, source = find_ngrok(config, {"PATH": str(home / "nothing")})
    assert source in ("pyngrok", "download") and path.endswith("ngrok")


async def test_ngrok_on_PATH_is_used(ngrok_bin: Path, events, ngrok_config, home: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(ngrok_bin.parent))
    tunnel = await open_public_url(ngrok_config(), LOCAL, 8888, home)
    await tunnel.close()
    [start] = events("start")
    assert not _alive(start["pid"])


async def test_ngrok_that_never_connects_is_stopped_with_a_clear_error(
    ngrok_bin: Path, events, ngrok_config, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NGROK_HANG", "1")
    with pytest.raises(ConfigError, match="did not connect within"):
        await open_public_url(ngrok_config(), LOCAL, 8888, home, ngrok_path=str(ngrok_bin),
                              startup_timeout=0.2)
    [start] = events("start")
    assert not _alive(start["pid"])


async def test_ngrok_too_old_for_the_endpoints_api_is_told_to_update(
    ngrok_bin: Path, events, ngrok_config, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NGROK_OLD", "1")
    with pytest.raises(ConfigError, match=r"too old .*ngrok update"):
        await open_public_url(ngrok_config(), LOCAL, 8888, home, ngrok_path=str(ngrok_bin),
                              startup_timeout=0.2)
    [start] = events("start")
    assert not _alive(start["pid"])


def test_sync_api_opens_and_closes(ngrok_bin: Path, events, ngrok_config, home: Path) -> None:
    tunnel = open_public_url_sync(ngrok_config(), LOCAL, 8888, home, ngrok_path=str(ngrok_bin))
    [start] = events("start")
    assert tunnel.public_url.startswith("https://") and _alive(start["pid"])
    tunnel.close_sync()
    assert not _alive(start["pid"])


async def test_public_url_is_used_as_given_without_a_tunnel(home: Path, write_config) -> None:
    write_config("public_url: https://calls.example.com/base/\n")
    tunnel = await open_public_url(load_config(home), LOCAL, 8888, home)
    assert tunnel == Tunnel("https://calls.example.com/base", "public_url")
    await tunnel.close()


async def test_no_tunnel_and_no_public_url_gives_the_local_address(home: Path) -> None:
    tunnel = await open_public_url(load_config(home), LOCAL + "/", 8888, home)
    assert (tunnel.public_url, tunnel.provider) == (LOCAL, "none")
    await tunnel.close()


async def test_a_domain_that_is_not_a_domain_is_a_config_error(ngrok_config, home: Path, ngrok_bin: Path) -> None:
    with pytest.raises(ConfigError, match="tunnel.domain"):
        await open_public_url(ngrok_config("  domain: 'not a domain'\n"), LOCAL, 8888, home,
                              ngrok_path=str(ngrok_bin))
