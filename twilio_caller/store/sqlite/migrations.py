"""The ordered, named migrations of the SQLite schema. Each is applied in one IMMEDIATE
transaction and recorded in `schema_migrations`; a new step is a new numbered entry here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_initial",
        (
            """CREATE TABLE contacts (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                name_key TEXT NOT NULL UNIQUE,
                number TEXT NOT NULL UNIQUE,
                timezone TEXT,
                voice TEXT,
                notes TEXT,
                opted_out_at TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE calls (
                id TEXT PRIMARY KEY,
                twilio_sid TEXT UNIQUE,
                contact_id INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
                to_name TEXT,
                to_number TEXT NOT NULL,
                message TEXT,
                mode TEXT NOT NULL,
                keep_open INTEGER NOT NULL DEFAULT 0,
                voice TEXT,
                language TEXT,
                status TEXT NOT NULL,
                placed INTEGER NOT NULL DEFAULT 1,
                answered_by TEXT,
                no_reply_reason TEXT,
                voicemail_left INTEGER NOT NULL DEFAULT 0,
                duration_seconds INTEGER,
                error TEXT,
                opted_out INTEGER NOT NULL DEFAULT 0,
                token TEXT NOT NULL,
                created_at TEXT NOT NULL,
                ended_at TEXT
            )""",
            "CREATE INDEX calls_by_contact ON calls(contact_id, created_at)",
            "CREATE INDEX calls_by_time ON calls(created_at)",
            """CREATE TABLE turns (
                id INTEGER PRIMARY KEY,
                call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
                speaker TEXT NOT NULL CHECK (speaker IN ('assistant', 'callee')),
                text TEXT NOT NULL,
                confidence REAL,
                at TEXT NOT NULL,
                dedupe_key TEXT UNIQUE
            )""",
            "CREATE INDEX turns_by_call ON turns(call_id, id)",
            """CREATE TABLE events (
                id INTEGER PRIMARY KEY,
                call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                status TEXT,
                sequence_number INTEGER,
                payload TEXT NOT NULL DEFAULT '{}',
                at TEXT NOT NULL,
                UNIQUE (call_id, kind, sequence_number)
            )""",
            """CREATE TABLE safety_decisions (
                id INTEGER PRIMARY KEY,
                call_id TEXT REFERENCES calls(id) ON DELETE SET NULL,
                tool TEXT NOT NULL,
                to_number TEXT,
                contact_id INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
                allowed INTEGER NOT NULL,
                rule TEXT,
                reason TEXT NOT NULL,
                message TEXT,
                decided_at TEXT NOT NULL
            )""",
            "CREATE INDEX decisions_by_time ON safety_decisions(decided_at)",
        ),
    ),
    Migration(
        "0002_call_state",
        (
            # Everything Twilio's next request for a live call needs: the sequences the
            # callback URLs carry, the agent's actions not yet delivered, who runs the call.
            """CREATE TABLE call_state (
                call_id TEXT PRIMARY KEY REFERENCES calls(id) ON DELETE CASCADE,
                gather_seq INTEGER NOT NULL DEFAULT 0,
                hold_seq INTEGER NOT NULL DEFAULT 0,
                reprompts_left INTEGER,
                last_prompt TEXT NOT NULL DEFAULT '[]',
                pending_actions TEXT NOT NULL DEFAULT '[]',
                max_seconds INTEGER,
                owner TEXT,
                lease_until TEXT,
                updated_at TEXT NOT NULL
            )""",
            # The TwiML given to each request key (voice, gather:N, hold:N): a replay or a
            # retry gets exactly that answer, also from another server process.
            """CREATE TABLE call_answers (
                call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
                request_key TEXT NOT NULL,
                twiml TEXT NOT NULL,
                at TEXT NOT NULL,
                PRIMARY KEY (call_id, request_key)
            )""",
            # Status callbacks without a SequenceNumber are deduplicated by their content.
            "ALTER TABLE events ADD COLUMN content_key TEXT",
            "CREATE UNIQUE INDEX events_by_content ON events(call_id, kind, content_key)",
            # Why a call ended when no callback said so (reconciliation: unknown, ...).
            "ALTER TABLE calls ADD COLUMN end_reason TEXT",
            # The one server of a home: its lease, renewed while it runs.
            """CREATE TABLE server_lease (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                pid INTEGER NOT NULL,
                lease_until TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        "0003_scheduled_calls",
        (
            """CREATE TABLE scheduled_calls (
                id TEXT PRIMARY KEY,
                arguments TEXT NOT NULL,
                to_name TEXT,
                to_number TEXT NOT NULL,
                due_at TEXT NOT NULL,
                retry_on TEXT NOT NULL DEFAULT '[]',
                max_attempts INTEGER NOT NULL DEFAULT 1,
                spacing_minutes REAL NOT NULL DEFAULT 10,
                when_allowed INTEGER NOT NULL DEFAULT 0,
                attempts_made INTEGER NOT NULL DEFAULT 0,
                state TEXT NOT NULL,
                claimed_at TEXT,
                call_ids TEXT NOT NULL DEFAULT '[]',
                outcome TEXT,
                detail TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX scheduled_by_due ON scheduled_calls(state, due_at)",
        ),
    ),
    Migration(
        "0004_call_engine",
        (
            # Which transport carries the call (gather: TwiML, relay: ConversationRelay), so a
            # restarted server takes it back on the engine it was placed with (issue 17).
            "ALTER TABLE calls ADD COLUMN engine TEXT NOT NULL DEFAULT 'gather'",
        ),
    ),
    Migration(
        "0005_carried_call_state",
        (
            # What a call's conversation carries from one answer to the next, so that any
            # instance of a shared deployment answers the next request as the last one would
            # (issue 18): the unsteered budget's start, the acknowledgement timing, a goodbye
            # waiting for asynchronous machine detection, and whether that was asked for.
            "ALTER TABLE call_state ADD COLUMN steered_at TEXT",
            "ALTER TABLE call_state ADD COLUMN quiet_since TEXT",
            "ALTER TABLE call_state ADD COLUMN acknowledged INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE call_state ADD COLUMN acknowledgements_said INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE call_state ADD COLUMN goodbye_pending INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE call_state ADD COLUMN async_detection INTEGER NOT NULL DEFAULT 0",
        ),
    ),
)
