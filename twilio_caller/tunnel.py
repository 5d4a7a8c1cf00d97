"""The public base URL Twilio is given: an ngrok tunnel opened through pyngrok
(`tunnel.provider: ngrok`), else the configured `public_url`, else the local address.

The ngrok authtoken never goes on ngrok's command line, where the process list would show
it: it is written to a 0600 ngrok config file under `$TWILIO_CALLER_HOME/run/` that ngrok
is started with (`--config`), and the file is removed when the tunnel closes. pyngrok would
put a token it is given (or finds in NGROK_AUTHTOKEN) after `--authtoken`, so it is never
given one. ngrok repeats a rejected token in its error log; every message and log line that
passes through here has the token masked.

pyngrok is blocking: `open_public_url` runs it in a worker thread. The ngrok executable is
found in this order: `tunnel.ngrok_path` (when the configuration has that key), the
PYNGROK_NGROK_PATH variable, `ngrok` on PATH, then pyngrok's own copy, which pyngrok
downloads on first use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from twilio_caller.config import Config
from twilio_caller.errors import ConfigError

log = logging.getLogger("twilio_caller.tunnel")

NGROK_PATH_ENV = "PYNGROK_NGROK_PATH"
DEFAULT_STARTUP_TIMEOUT = 20.0
ENDPOINT_NAME = "twilio-caller-webhook"
TOKEN_HELP = "copy it from https://dashboard.ngrok.com/get-started/your-authtoken into NGROK_AUTHTOKEN"
FALLBACK = "or set tunnel.provider: none and public_url to an https tunnel you run yourself"
PYNGROK_LOGGERS = ("pyngrok.process.ngrok", "pyngrok.process", "pyngrok.ngrok", "pyngrok.installer")


@dataclass
class Tunnel:
    """Where Twilio reaches the webhook. `provider` is "ngrok", "public_url" or "none";
    `close()` ends the ngrok tunnel and process (a no-op for the other two)."""

    public_url: str
    provider: str
    _closer: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def closed(self) -> bool:
        return self._closer is None

    def close_sync(self) -> None:
        with self._lock:
            closer, self._closer = self._closer, None
        if closer is not None:
            closer()

    async def close(self) -> None:
        if self._closer is not None:
            await asyncio.to_thread(self.close_sync)


async def open_public_url(
    config: Config,
    local_base_url: str,
    local_port: int,
    home: Path,
    *,
    ngrok_path: str | None = None,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
) -> Tunnel:
    """The public base URL for the webhook listening at `local_base_url` (port `local_port`).
    Raises ConfigError with what to do when an ngrok tunnel cannot be opened."""
    if config.settings.tunnel.provider != "ngrok":
        return open_public_url_sync(config, local_base_url, local_port, home)
    job = asyncio.ensure_future(asyncio.to_thread(
        open_public_url_sync, config, local_base_url, local_port, home,
        ngrok_path=ngrok_path, startup_timeout=startup_timeout,
    ))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        job.add_done_callback(_close_when_done)  # the thread runs on: close what it opens
        raise


def open_public_url_sync(
    config: Config,
    local_base_url: str,
    local_port: int,
    home: Path,
    *,
    ngrok_path: str | None = None,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
) -> Tunnel:
    """`open_public_url` for a caller without an event loop; this blocks while ngrok starts."""
    public = config.settings.public_url
    if config.settings.tunnel.provider == "ngrok":
        if public:
            log.info("tunnel.provider is ngrok: the ngrok URL is used, public_url is ignored")
        return _NgrokOpener(config, local_base_url, local_port, home, ngrok_path, startup_timeout).open()
    if public:
        return Tunnel(public.rstrip("/"), "public_url")
    return Tunnel(local_base_url.rstrip("/"), "none")


def find_ngrok(config: Config | None = None, environ: Any = os.environ) -> tuple[str, str]:
    """(path, where it came from) of the ngrok executable pyngrok will run; the path may not
    exist yet when it is pyngrok's own copy ("download"), which pyngrok fetches on first use."""
    configured = config.settings.tunnel.ngrok_path if config is not None else None
    if configured:
        return str(Path(str(configured)).expanduser()), "tunnel.ngrok_path"
    if environ.get(NGROK_PATH_ENV, "").strip():
        return str(Path(environ[NGROK_PATH_ENV].strip()).expanduser()), NGROK_PATH_ENV
    on_path = shutil.which("ngrok", path=environ.get("PATH"))
    if on_path:
        return on_path, "PATH"
    from pyngrok import conf

    return conf.DEFAULT_NGROK_PATH, "pyngrok" if os.path.exists(conf.DEFAULT_NGROK_PATH) else "download"


def ngrok_config_file(home: Path) -> Path:
    return home / "run" / "ngrok.yml"


class _NgrokOpener:
    def __init__(self, config: Config, local_base_url: str, local_port: int, home: Path,
                 ngrok_path: str | None, startup_timeout: float) -> None:
        self.config = config
        self.upstream = _upstream(local_base_url, local_port)
        self.home = home
        self.explicit_path = ngrok_path
        self.startup_timeout = startup_timeout
        tunnel = config.settings.tunnel
        self.token = tunnel.authtoken or ""
        self.domain = _domain(tunnel.domain)
        self.region = tunnel.region

    def open(self) -> Tunnel:
        from pyngrok import conf, installer, ngrok, process
        from pyngrok.exception import PyngrokError

        if not self.token:
            raise ConfigError(f"tunnel.provider is ngrok but no ngrok authtoken is set: {TOKEN_HELP} "
                              f"(or tunnel.authtoken in config.yaml), {FALLBACK}")
        path, source = self._ngrok_path()
        config_file = _write_ngrok_config(ngrok_config_file(self.home), self.token)
        _REDACTOR.add(self.token)
        pyngrok_config = conf.PyngrokConfig(
            ngrok_path=path, config_path=str(config_file), region=self.region,
            startup_timeout=max(1, int(self.startup_timeout)),
        )
        pyngrok_config.auth_token = None  # PyngrokConfig takes NGROK_AUTHTOKEN; it would go on argv
        pyngrok_config.api_key = None
        if process.is_process_running(path):
            log.warning("an ngrok process from an earlier tunnel is still running: stopping it")
            ngrok.kill(pyngrok_config)
        if not os.path.exists(path):
            log.info("ngrok is not installed: pyngrok is downloading it to %s", path)
            installer._print_progress_enabled = False  # stdout may carry a JSON document
        watchdog = _Watchdog(self.startup_timeout + 1, path)
        options: dict[str, Any] = {"url": f"https://{self.domain}"} if self.domain else {}
        try:
            opened = ngrok.connect(self.upstream, "http", ENDPOINT_NAME, pyngrok_config=pyngrok_config, **options)
        except (PyngrokError, OSError) as exc:
            watchdog.cancel()
            self._cleanup(pyngrok_config, config_file)
            raise self._explain(exc, path, source, watchdog) from None
        except BaseException:
            watchdog.cancel()
            self._cleanup(pyngrok_config, config_file)
            raise
        watchdog.cancel()
        if watchdog.fired:  # it went off as connect() returned: the process is gone
            self._cleanup(pyngrok_config, config_file)
            raise self._explain(TimeoutError("ngrok did not start"), path, source, watchdog)
        public = str(opened.public_url or "").rstrip("/")
        if not public.startswith("https://"):
            self._cleanup(pyngrok_config, config_file)
            raise ConfigError(f"ngrok gave {public or 'no URL'} instead of an https URL; update ngrok "
                              f"(`ngrok update`), {FALLBACK}")
        if not process.is_process_running(path):
            self._cleanup(pyngrok_config, config_file)
            raise ConfigError(f"ngrok ({path}) exited right after opening the tunnel; see the server "
                              f"log for ngrok's output, {FALLBACK}")
        proc = process.get_process(pyngrok_config).proc
        log.info("ngrok tunnel %s -> %s (ngrok pid %s)", public, self.upstream, proc.pid)

        def close() -> None:
            try:
                ngrok.disconnect(public, pyngrok_config)  # ends the endpoint cleanly at ngrok's side
            except Exception as exc:  # noqa: BLE001 - the process goes anyway
                log.debug("ngrok disconnect failed: %s", _REDACTOR.redact(str(exc)))
            _terminate(proc)
            self._cleanup(pyngrok_config, config_file)
            log.info("ngrok tunnel %s closed", public)

        return Tunnel(public, "ngrok", close)

    def _ngrok_path(self) -> tuple[str, str]:
        if self.explicit_path:
            path, source = str(Path(self.explicit_path).expanduser()), "ngrok_path"
        else:
            path, source = find_ngrok(self.config)
        if source in ("tunnel.ngrok_path", "ngrok_path") and not os.path.isfile(path):
            raise ConfigError(f"{source} is {path}, but there is no file there; install ngrok "
                              f"(https://ngrok.com/download) and point {source} at the executable, {FALLBACK}")
        return path, source

    def _cleanup(self, pyngrok_config: Any, config_file: Path) -> None:
        from pyngrok import installer, ngrok

        try:
            ngrok.kill(pyngrok_config)
        except Exception as exc:  # noqa: BLE001
            log.debug("ngrok kill failed: %s", exc)
        installer._config_cache.pop(str(config_file), None)
        config_file.unlink(missing_ok=True)
        _REDACTOR.discard(self.token)

    def _explain(self, exc: BaseException, path: str, source: str, watchdog: _Watchdog) -> ConfigError:
        from pyngrok.exception import PyngrokNgrokHTTPError, PyngrokNgrokInstallError

        detail = _REDACTOR.redact(_error_text(exc), self.token)
        code = _error_code(detail)
        if isinstance(exc, PyngrokNgrokInstallError):
            return ConfigError(
                f"ngrok is not installed and pyngrok could not download it ({_first_line(detail)}). "
                "Install ngrok (https://ngrok.com/download) and put it on PATH, or set tunnel.ngrok_path "
                f"(or {NGROK_PATH_ENV}) to the ngrok executable; {FALLBACK}")
        if isinstance(exc, OSError):
            return ConfigError(f"cannot run ngrok at {path} (from {source}): {exc.strerror or exc}; "
                               "install ngrok (https://ngrok.com/download) and set tunnel.ngrok_path to it")
        if code in ("ERR_NGROK_105", "ERR_NGROK_106", "ERR_NGROK_107", "ERR_NGROK_4018"):
            why = {"ERR_NGROK_105": "it does not look like an ngrok authtoken",
                   "ERR_NGROK_4018": "ngrok needs a verified account and its authtoken",
                   }.get(code, "it is not valid (reset, revoked, or of another account)")
            origin = ("NGROK_AUTHTOKEN" if "tunnel.authtoken" in self.config.from_env
                      else "tunnel.authtoken in config.yaml")
            return ConfigError(f"ngrok rejected the authtoken from {origin} ({code}): {why}. Copy your current "
                               "authtoken from https://dashboard.ngrok.com/get-started/your-authtoken into "
                               "NGROK_AUTHTOKEN")
        if code in ("ERR_NGROK_320", "ERR_NGROK_7117", "ERR_NGROK_7118", "ERR_NGROK_313",
                    "ERR_NGROK_319", "ERR_NGROK_401"):
            return ConfigError(
                f"ngrok will not serve tunnel.domain {self.domain} for this authtoken's account ({code}): "
                "reserve the domain at https://dashboard.ngrok.com/domains with the same account as "
                "NGROK_AUTHTOKEN, fix tunnel.domain, or remove it to get a random ngrok URL")
        if code == "ERR_NGROK_334":
            return ConfigError(
                f"{self.domain or 'the endpoint'} is already online in another ngrok session ({code}): "
                "stop the other ngrok agent or twilio-caller server using it, or wait a minute and retry")
        if code == "ERR_NGROK_108":
            return ConfigError(f"the ngrok account already has as many agent sessions as it may ({code}): "
                               "stop the other ngrok agent, or use another account's NGROK_AUTHTOKEN")
        if code in ("ERR_NGROK_120", "ERR_NGROK_121"):
            return ConfigError(f"this ngrok ({path}) is too old for the ngrok service ({code}): run "
                               "`ngrok update`, or install a current ngrok and set tunnel.ngrok_path")
        if isinstance(exc, PyngrokNgrokHTTPError) and exc.status_code == 404 and "/api/endpoints" in exc.url:
            return ConfigError(f"this ngrok ({path}) is too old to create endpoints: run `ngrok update`, "
                               "or install a current ngrok v3 and set tunnel.ngrok_path")
        if watchdog.fired and watchdog.session_up:
            return ConfigError(f"ngrok ({path}) connected, but its local API has no /api/endpoints: this "
                               "ngrok is too old for pyngrok; run `ngrok update`, or install a current ngrok "
                               "v3 and set tunnel.ngrok_path to it")
        if watchdog.fired:
            return ConfigError(
                f"ngrok ({path}) did not connect within {self.startup_timeout:g} s: check this machine "
                f"reaches ngrok's service (https://status.ngrok.com), then retry; {FALLBACK}")
        where = f" ({code})" if code else ""
        return ConfigError(f"ngrok could not open a tunnel{where}: {_first_line(detail)}; "
                           f"see the server log for ngrok's output, {FALLBACK}")


class _Watchdog:
    """pyngrok waits on ngrok's output with no timeout of its own: end an ngrok that never
    finishes starting, so that pyngrok sees it exit and raises."""

    def __init__(self, seconds: float, path: str) -> None:
        self.fired = False
        self.session_up = False
        self._path = path
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _fire(self) -> None:
        from pyngrok import process

        with self._lock:
            if self._done:
                return
            starting = process._current_processes.get(self._path)
            if starting is not None and starting.proc.poll() is None:
                self.fired = True
                # connected to ngrok's service, yet pyngrok's probe of /api/endpoints never passed
                self.session_up = bool(getattr(starting, "_client_connected", False) and starting.api_url)
                log.warning("ngrok did not start in time: stopping it")
                starting.proc.kill()


def _terminate(proc: Any) -> None:
    """SIGTERM first so ngrok can close its session with the service, then SIGKILL."""
    import subprocess

    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _close_when_done(job: asyncio.Future[Tunnel]) -> None:
    if not job.cancelled() and job.exception() is None:
        threading.Thread(target=job.result().close_sync, daemon=True).start()


def _write_ngrok_config(path: Path, token: str) -> Path:
    """ngrok's v3 config file with only the authtoken, 0600 in the 0700 run directory."""
    import yaml

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = yaml.safe_dump({"version": "3", "agent": {"authtoken": token}}, default_flow_style=False)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
    return path


def _upstream(local_base_url: str, local_port: int) -> str:
    """http://host:port ngrok forwards to: the webhook's own address, loopback for a wildcard."""
    host = urlsplit(local_base_url).hostname or "127.0.0.1"
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{local_port}" if ":" in host else f"http://{host}:{local_port}"


def _domain(value: Any) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    host = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", text).split("/")[0].strip().lower()
    if not host or not re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?", host):
        raise ConfigError(f"tunnel.domain {text!r} is not a domain name; use the reserved domain as "
                          "shown at https://dashboard.ngrok.com/domains, e.g. example.ngrok.app")
    return host




def _error_text(exc: BaseException) -> str:
    parts = [str(exc)]
    for name in ("ngrok_error", "body"):
        value = getattr(exc, name, None)
        if value and str(value) not in parts[0]:
            parts.append(str(value))
    return "\n".join(parts)


def _error_code(text: str) -> str | None:
    match = re.search(r"ERR_NGROK_\d+", text)
    return match.group(0) if match else None


def _first_line(text: str) -> str:
    line = re.split(r"\\n|\\r|\n|\r", text.strip(), maxsplit=1)[0].strip()
    return line[:300]


class _Redactor(logging.Filter):
    """Masks ngrok authtokens in pyngrok's log records (ngrok echoes a rejected token)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, int] = {}
        self._lock = threading.Lock()
        self._installed = False

    def add(self, secret: str) -> None:
        with self._lock:
            self._secrets[secret] = self._secrets.get(secret, 0) + 1
            if not self._installed:
                for name in PYNGROK_LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._installed = True

    def discard(self, secret: str) -> None:
        with self._lock:
            count = self._secrets.get(secret, 0) - 1
            if count > 0:
                self._secrets[secret] = count
            else:
                self._secrets.pop(secret, None)

    def redact(self, text: str, *extra: str) -> str:
        with self._lock:
            secrets = [*self._secrets, *extra]
        for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
            text = text.replace(secret, "****")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            cleaned = self.redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_REDACTOR = _Redactor()
