"""`twilio-caller doctor`: is this machine ready to place real calls? Each check says what it
found and, when something is off, how to fix it. Secrets are checked, never shown."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from twilio_caller.errors import TwilioCallerError
from twilio_caller.runtime import Runtime

_SID = re.compile(r"^AC[0-9a-f]{32}$")
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not checked (it did not apply, or an earlier check failed)
    detail: str
    fix: str | None = None


def run(rt: Runtime, *, online: bool) -> dict[str, Any]:
    try:
        _ = rt.config  # a config that does not load is the first thing to fix
    except TwilioCallerError as exc:
        check = Check("configuration", False, exc.message, "fix config.yaml or the environment as it says")
        return {"ok": False, "checks": [asdict(check)]}
    checks = [_credentials(rt), _config_file(rt), _identity(rt), _home(rt), _database(rt), _from_number(rt),
              _tunnel(rt), _clock(rt)]
    checks.append(_account(rt) if online else Check(
        "twilio account", None, "not contacted (run `doctor --online` to check the credentials with Twilio)"))
    checks.append(_reachable(rt))
    return {"ok": all(c.ok is not False for c in checks), "checks": [asdict(c) for c in checks]}


def _credentials(rt: Runtime) -> Check:
    sid, token = rt.settings.twilio.account_sid, rt.settings.twilio.auth_token
    problems = []
    if not sid:
        problems.append("TWILIO_ACCOUNT_SID is not set")
    elif not _SID.match(sid):
        problems.append("TWILIO_ACCOUNT_SID does not look like an account SID (AC + 32 hex digits)")
    if not token:
        problems.append("TWILIO_AUTH_TOKEN is not set")
    elif not _TOKEN.match(token):
        problems.append("TWILIO_AUTH_TOKEN does not look like an auth token (32 hex digits)")
    if problems:
        return Check("credentials", False, "; ".join(problems),
                     "copy the Account SID and Auth Token from console.twilio.com into the environment")
    return Check("credentials", True, f"account {(sid or '')[:6]}…, auth token set")


def _config_file(rt: Runtime) -> Check:
    from twilio_caller.config import world_readable_secrets

    file = rt.config.file
    if file is None:
        return Check("config file", True, "none (defaults and the environment)")
    if world_readable_secrets(rt.config):
        return Check("config file", False, f"{file} holds secrets and others can read it", f"chmod 600 {file}")
    return Check("config file", True, str(file))


def _identity(rt: Runtime) -> Check:
    from twilio_caller.safety import require_identity

    try:
        require_identity(rt.config)
    except TwilioCallerError as exc:
        return Check("identity", False, "the owner's and the assistant's names are not set",
                     exc.message)
    return Check("identity", True, f"opening: {rt.settings.identity.opening_text!r}")


def _home(rt: Runtime) -> Check:
    from twilio_caller.config import loose_home

    if not rt.home.exists():
        return Check("home", True, f"{rt.home} (created on first use, private: 0700)")
    loose = loose_home(rt.home)
    if loose:
        return Check("home", False, f"{rt.home} is readable by others ({loose}); it holds transcripts",
                     f"chmod 700 {rt.home}")
    return Check("home", True, f"{rt.home} (private)")


def _database(rt: Runtime) -> Check:
    """The store: the home's SQLite file, or the PostgreSQL database store.url names (reachable,
    and every named migration applied). Read only: doctor migrates nothing."""
    url = rt.settings.store.url
    if not url:
        path = rt.config.database_path
        return Check("database", True, f"SQLite {path}" + ("" if path.exists() else " (created on first use)"))
    try:
        from twilio_caller.store.postgres.database import PgDatabase, redact
    except ImportError as exc:
        return Check("database", False, f"store.url is set but psycopg is not installed ({exc})",
                     "install the postgres extra: pip install 'twilio-caller[postgres]'")
    try:
        database = PgDatabase(url, migrations=())
        try:
            pending = [migration.name for migration in database.pending_migrations()]
        finally:
            database.close()
    except TwilioCallerError as exc:
        return Check("database", False, exc.message, "start PostgreSQL or correct store.url / TWILIO_CALLER_DATABASE_URL")
    if pending:
        return Check("database", False, f"PostgreSQL {redact(url)} is reachable but not migrated "
                     f"(pending: {', '.join(pending)})",
                     "run `twilio-caller store migrate` (any command that opens the store applies them too)")
    return Check("database", True, f"PostgreSQL {redact(url)} (reachable, migrated)")


def _from_number(rt: Runtime) -> Check:
    from twilio_caller import numbers

    value = rt.settings.twilio.from_number
    if not value:
        return Check("caller id", False, "TWILIO_FROM_NUMBER is not set",
                     "set it to a number of your Twilio account (or a verified caller ID), e.g. +13125550100")
    try:
        number = numbers.parse_regular(value, rt.settings.phone_region, "a caller ID")
    except TwilioCallerError as exc:
        return Check("caller id", False, exc.message, "use the E.164 form of a number your account owns")
    return Check("caller id", True, f"{number.e164} ({number.region}); Twilio must own or have verified it")


def _tunnel(rt: Runtime) -> Check:
    provider, public = rt.settings.tunnel.provider, rt.settings.public_url
    if provider == "ngrok":
        if not rt.settings.tunnel.authtoken:
            return Check("tunnel", False, "tunnel.provider is ngrok but NGROK_AUTHTOKEN is not set",
                         "copy your authtoken from dashboard.ngrok.com into NGROK_AUTHTOKEN")
        from twilio_caller.tunnel import find_ngrok

        path, source = find_ngrok(rt.config)
        return Check("tunnel", True, f"ngrok ({path or 'downloaded by pyngrok on first use'}, from {source}), authtoken set")
    if public:
        if not public.startswith("https://"):
            return Check("tunnel", False, f"public_url {public} is not https",
                         "Twilio needs a public https URL; put an https reverse proxy or tunnel in front")
        return Check("tunnel", True, f"public_url {public}")
    return Check("tunnel", False, "no tunnel and no public_url: Twilio cannot reach this machine",
                 "set tunnel.provider: ngrok (with NGROK_AUTHTOKEN), or public_url to your own https tunnel")


def _clock(rt: Runtime) -> Check:
    from twilio_caller.safety import Rules

    rules = Rules.from_settings(rt.settings)
    now = rt.clock.now()
    local = now.astimezone(rules.owner_zone)
    detail = (f"owner time {local:%Y-%m-%d %H:%M %Z} ({rules.owner_zone.key}); calling hours "
              f"{rules.calling_hours}: {'open' if rules.calling_hours.contains(now, rules.owner_zone) else 'closed'} now")
    return Check("clock", True, detail)


def _account(rt: Runtime) -> Check:
    from twilio_caller.transport.twilio.calls import Credentials, Telephony

    try:
        telephony = Telephony(Credentials.from_settings(rt.settings.twilio), rt.store.ledger)
        telephony.recent_calls(limit=1)
    except TwilioCallerError as exc:
        return Check("twilio account", False, exc.message,
                     "check the credentials; error 20003 means Twilio rejected them")
    return Check("twilio account", True, "Twilio accepted the credentials")


def _reachable(rt: Runtime) -> Check:
    from twilio_caller.server.client import find_server

    server = find_server(rt.home)
    if server is None:
        return Check("public url", None, "no server is running; start one (`twilio-caller serve`) and run doctor again")
    answer = server.reachability()
    if answer is None:
        return Check("public url", False, "the server did not answer the reachability check")
    if answer["reachable"]:
        return Check("public url", True, f"{answer['url']} reaches this server")
    return Check("public url", False, f"{answer['url']} does not reach this server: {answer['detail']}",
                 "check the tunnel or reverse proxy forwards to the webhook port")

