"""A stand-in for the ngrok v3 agent, enough of it for pyngrok: `ngrok start --none --log
stdout [--config PATH] [--authtoken TOKEN] [--region R]` prints logfmt lines as the agent
does, serves the local agent API on 127.0.0.1 (/api/endpoints, and /api/tunnels), and hands
out https://<random>.ngrok-free.app URLs or the reserved domain asked for. It never touches
the network beyond 127.0.0.1.

The test steers it through the environment pyngrok hands on:
  FAKE_NGROK_RECORD        a file; one JSON line per event (start, create, delete) is appended
  FAKE_NGROK_REJECT_TOKEN  an authtoken the "service" rejects as invalid (ERR_NGROK_107);
                           a token that does not look like one is rejected as ERR_NGROK_105,
                           none at all as ERR_NGROK_4018, as ngrok does
  FAKE_NGROK_DOMAINS       comma-separated domains the account has reserved
  FAKE_NGROK_FOREIGN_DOMAINS  domains reserved by another account (ERR_NGROK_320)
  FAKE_NGROK_HANG          when set, the session never comes up (no "client session established")
  FAKE_NGROK_OLD           when set, the agent predates /api/endpoints (404), as old ngrok 3.x
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_SHAPE = re.compile(r"^[0-9A-Za-z_]{20,}$")
NEEDS_QUOTES = re.compile(r"[\s\"=]")


def log(level: str, msg: str, **fields: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
    parts = [f"t={stamp}", f"lvl={level}", f"msg={json.dumps(msg)}"]
    for key, value in fields.items():
        parts.append(f"{key}={json.dumps(value) if NEEDS_QUOTES.search(value) else value}")
    sys.stdout.write(" ".join(parts) + "\n")
    sys.stdout.flush()


def record(event: str, **data: Any) -> None:
    path = os.environ.get("FAKE_NGROK_RECORD")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps({"event": event, "pid": os.getpid(), **data}) + "\n")


def parse_args(argv: list[str]) -> dict[str, Any]:
    if not argv or argv[0] != "start":
        sys.stderr.write(f"fake ngrok: unsupported command {argv[:1]}\n")
        sys.exit(2)
    options: dict[str, Any] = {"none": False}
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--none":
            options["none"] = True
        elif arg in ("--log", "--config", "--authtoken", "--region", "--log-format", "--log-level"):
            options[arg[2:]] = next(rest)
        else:
            sys.stderr.write(f"fake ngrok: unknown flag {arg}\n")
            sys.exit(2)
    return options


def read_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    import yaml

    with open(path, encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    if str(data.get("version")) == "3":
        unknown = set(data) - {"version", "agent", "endpoints", "tunnels"}
        if unknown:  # ngrok refuses a config with keys it does not know
            log("eror", "failed to load config", err=f"unknown keys {sorted(unknown)}")
            sys.exit(1)
    return data


def authtoken(options: dict[str, Any], config: dict[str, Any]) -> tuple[str | None, str]:
    if options.get("authtoken"):
        return options["authtoken"], "flag"
    if os.environ.get("NGROK_AUTHTOKEN"):
        return os.environ["NGROK_AUTHTOKEN"], "env"
    agent = config.get("agent") or {}
    if agent.get("authtoken"):
        return str(agent["authtoken"]), "config"
    if config.get("authtoken"):
        return str(config["authtoken"]), "config"
    return None, "none"


def rejection(token: str | None) -> str | None:
    if not token:
        return ("authentication failed: Usage of ngrok requires a verified account and authtoken.\n\n"
                "Sign up for an account: https://dashboard.ngrok.com/signup\n\nERR_NGROK_4018\n")
    if not TOKEN_SHAPE.match(token):
        return ("authentication failed: The authtoken you specified does not look like a proper ngrok "
                f"tunnel authtoken.\nYour authtoken: {token}\nInstructions to install your authtoken are on "
                "your ngrok dashboard:\nhttps://dashboard.ngrok.com/get-started/your-authtoken\n\nERR_NGROK_105\n")
    if token == os.environ.get("FAKE_NGROK_REJECT_TOKEN"):
        return ("authentication failed: The authtoken you specified is properly formed, but it is invalid.\n"
                f"Your authtoken: {token}\nThis usually happens when:\n    - You reset your authtoken\n"
                "    - Your authtoken was for a team account that you were removed from\n\nERR_NGROK_107\n")
    return None


def domains(variable: str) -> set[str]:
    return {item.strip().lower() for item in os.environ.get(variable, "").split(",") if item.strip()}


class Agent:
    def __init__(self) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body.get("name") or f"endpoint-{secrets.token_hex(4)}"
        wanted = body.get("url") or body.get("domain") or body.get("hostname")
        if wanted:
            host = re.sub(r"^[a-z]+://", "", str(wanted)).rstrip("/").lower()
            if host in domains("FAKE_NGROK_FOREIGN_DOMAINS"):
                return 502, failure(
                    f"failed to start tunnel: This domain is reserved for another account. Failed to create "
                    f"an endpoint with the domain {host} for the account Test. If you have reserved this "
                    "name, make sure that you are using an authtoken credential for the appropriate "
                    "account.\r\n\r\nERR_NGROK_320\r\n")
            if host not in domains("FAKE_NGROK_DOMAINS"):
                return 502, failure(
                    f"failed to start tunnel: The domain {host} is not reserved by your account.\r\n\r\n"
                    "ERR_NGROK_7118\r\n")
            url = f"https://{host}"
        else:
            url = f"https://{secrets.token_hex(6)}.ngrok-free.app"
        upstream = body.get("upstream") or {"url": body.get("addr")}
        with self.lock:
            if any(endpoint["url"] == url for endpoint in self.endpoints.values()):
                return 502, failure(f"failed to start tunnel: The endpoint '{url}' is already online.\r\n\r\n"
                                    "ERR_NGROK_334\r\n")
            endpoint = {"name": name, "uri": f"/api/endpoints/{name}", "url": url, "public_url": url,
                        "proto": "https", "upstream": upstream, "metrics": {}}
            self.endpoints[name] = endpoint
        return 201, endpoint


def failure(err: str) -> dict[str, Any]:
    return {"error_code": 103, "status_code": 502, "msg": "failed to start tunnel", "details": {"err": err}}


def make_handler(agent: Agent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # stdout belongs to the logfmt lines
            pass

        def _send(self, status: int, body: dict[str, Any] | None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> tuple[str, str | None] | None:
            match = re.fullmatch(r"/api/(endpoints|tunnels)(?:/([^/?]+))?/?(?:\?.*)?", self.path)
            if match and match.group(1) == "endpoints" and os.environ.get("FAKE_NGROK_OLD"):
                return None  # an agent from before the endpoints API
            return (match.group(1), match.group(2)) if match else None

        def do_GET(self) -> None:
            route = self._route()
            if route is None:
                return self._send(404, {"error_code": 100, "status_code": 404, "msg": "not found"})
            kind, name = route
            with agent.lock:
                if name is None:
                    return self._send(200, {kind: list(agent.endpoints.values()), "uri": f"/api/{kind}"})
                endpoint = agent.endpoints.get(name)
            self._send(200, endpoint) if endpoint else self._send(404, {"status_code": 404, "msg": "not found"})

        def do_POST(self) -> None:
            route = self._route()
            if route is None or route[1] is not None:
                return self._send(404, {"status_code": 404, "msg": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            status, answer = agent.create(body)
            record("create", body=body, status=status, answer=answer)
            if status == 201:
                log("info", "started tunnel", obj="tunnels", name=answer["name"], url=answer["url"])
            self._send(status, answer)

        def do_DELETE(self) -> None:
            route = self._route()
            name = route[1] if route else None
            with agent.lock:
                endpoint = agent.endpoints.pop(name, None) if name else None
            record("delete", name=name, found=endpoint is not None)
            self._send(204, None) if endpoint else self._send(404, {"status_code": 404, "msg": "not found"})

    return Handler


def main() -> None:
    options = parse_args(sys.argv[1:])
    config = read_config(options.get("config"))
    token, source = authtoken(options, config)
    config_mode = oct(os.stat(options["config"]).st_mode & 0o777) if options.get("config") else None
    record("start", argv=sys.argv[1:], token=token, token_source=source, config_mode=config_mode,
           region=options.get("region"))

    log("info", "open config file", path=options.get("config") or "default", err="nil")
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Agent()))
    log("info", "starting web service", obj="web", addr=f"127.0.0.1:{server.server_address[1]}",
        allow_hosts="[]")
    refused = rejection(token)
    if refused:
        log("eror", "session closing", obj="tunnels.session", err=refused)
        log("crit", "command failed", err=refused)
        sys.exit(1)
    if not os.environ.get("FAKE_NGROK_HANG"):
        log("info", "tunnel session started", obj="tunnels.session")
        log("info", "client session established", obj="csess", id=secrets.token_hex(6))
    server.serve_forever()


if __name__ == "__main__":
    main()
