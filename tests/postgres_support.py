"""A real PostgreSQL for the tests: a database of their own per test session
(tc_test_<random>, created through the `postgres` database and dropped at the end), and a
fresh schema per test inside it. Where no server answers, the tests that need it skip — or,
with TWILIO_CALLER_REQUIRE_POSTGRES=1 (as .ci/run sets), fail."""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote

ADMIN_URL_ENV = "TWILIO_CALLER_TEST_POSTGRES"
REQUIRE_ENV = "TWILIO_CALLER_REQUIRE_POSTGRES"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW_TO_ENABLE = (f"start PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres) or set {ADMIN_URL_ENV}="
                 "postgresql://user@host:port/postgres to run them")


def admin_url() -> str:
    return os.environ.get(ADMIN_URL_ENV, "").strip() or DEFAULT_ADMIN_URL


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


def database_url(name: str) -> str:
    base, _, _ = admin_url().rpartition("/")
    return f"{base}/{name}"


def with_schema(url: str, schema: str) -> str:
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


def new_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"
