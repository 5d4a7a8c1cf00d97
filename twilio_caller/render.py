"""What people see: the tables and summaries the CLI prints for tool results, and live call
progress on stderr. (With --json the CLI prints the results themselves.)"""

from __future__ import annotations

import json
import sys
from typing import Any


def contact_table(contacts: list[dict[str, Any]]) -> str:
    if not contacts:
        return "no contacts yet; add one with: twilio-caller add 312-555-0123 \"Contact7\""
    rows = [[c["name"], c["number"], c["timezone"] or "", c["voice"] or "", c["notes"] or ""]
            for c in contacts]
    return table(["NAME", "NUMBER", "TIMEZONE", "VOICE", "NOTES"], rows)


def call_table(calls: list[dict[str, Any]]) -> str:
    if not calls:
        return "no calls yet"
    rows = [[c["created_at"], c["to"]["name"] or c["to"]["number"], c["status"],
             (c["reply"] or {}).get("text", "")] for c in calls]
    return table(["WHEN", "TO", "STATUS", "REPLY (untrusted)"], rows)


def reconciled_text(result: dict[str, Any]) -> str:
    changed = result["changed"]
    if not changed:
        return "every live call checked with Twilio: nothing to change"
    rows = [[c["call_id"], c["action"], c["status"], c["reason"] or ""] for c in changed]
    return table(["CALL", "CHANGE", "STATUS", "REASON"], rows)


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def config_text(shown: dict[str, Any]) -> str:
    import yaml

    source = shown["file"] or "no config file (defaults)"
    lines = [f"# home: {shown['home']}", f"# file: {source}"]
    lines += [f"# {key} from ${variable}" for key, variable in shown["from_environment"].items()]
    return "\n".join(lines) + "\n" + yaml.safe_dump(shown["values"], sort_keys=False).rstrip()


def call_text(result: dict[str, Any]) -> str:
    if "scheduled_id" in result:
        return scheduled_text(result)
    if result.get("dry_run"):
        to = result["to"]["name"] or result["to"]["number"]
        return (f"dry run: a call to {to} ({result['to']['number']}) is allowed now\n"
                f"  would say: {result['opening']} {result['message']}")
    to = result["to"]["name"] or result["to"]["number"]
    state = result["status"] + ("" if result["ended"] else " (still live)")
    lines = [f"{result['call_id']} to {to} ({result['to']['number']}): {state}"]
    if result["reply"]:
        lines.append(f"reply (untrusted): \"{result['reply']['text']}\"")
    elif result["no_reply_reason"]:
        lines.append(f"no reply: {result['no_reply_reason']}")
    if result.get("opted_out"):
        lines.append("the callee opted out: later calls to them are refused")
    if result.get("voicemail_left"):
        lines.append("left the message on voicemail")
    for fallback in result.get("audio_fallbacks", []):
        lines.append(f"spoken with the Twilio voice ({fallback['reason']}): {fallback['text']}")
    return "\n".join(lines)


def scheduled_text(item: dict[str, Any]) -> str:
    to = item["to"]["name"] or item["to"]["number"]
    lines = [f"{item['scheduled_id']} to {to} ({item['to']['number']}): {item['state']}, at {item['at']}"
             f" (attempts {item['attempts_made']} of {item['retry']['attempts']})"]
    if item["detail"]:
        lines.append(item["detail"])
    if item["last_call"]:
        lines.append("last call: " + call_text(item["last_call"]).replace("\n", "\n  "))
    return "\n".join(lines)


def scheduled_table(items: list[dict[str, Any]]) -> str:
    rows = [[item["scheduled_id"], item["to"]["name"] or item["to"]["number"], item["at"], item["state"],
             str(item["attempts_made"])] for item in items]
    return table(["ID", "TO", "AT", "STATE", "ATTEMPTS"], rows) if rows else "no scheduled calls"


def safety_text(report: dict[str, Any]) -> str:
    rules, now, today = report["rules"], report["now"], report["today"]
    lines = [
        f"calling hours {rules['calling_hours']} ({rules['timezone']}), now {now['owner_time']}"
        + ("" if now["within_calling_hours"] else " — outside them"),
        f"callee's local hours: {rules['callee_hours'] or 'not checked'}",
        f"caps: {rules['max_calls_per_contact_per_day']} per contact a day, {rules['max_calls_per_day']}"
        f" in total, {rules['max_concurrent_calls']} at once, "
        f"{rules['min_seconds_between_calls_to_contact']:g} s between calls to a contact",
        f"longest call {rules['max_duration_seconds']} s; countries {', '.join(rules['allowed_countries'])};"
        f" blocked: {', '.join(rules['blocked']) or 'none'}",
        f"today: {today['calls']} calls placed, {today['remaining']} left, {today['live_calls']} live",
    ]
    rows = [[c["name"], c["number"], str(c["calls"]), str(c["remaining"]),
             "opted out" if c["opted_out"] else ""] for c in today["contacts"]]
    if rows:
        lines += ["", table(["CONTACT", "NUMBER", "TODAY", "LEFT", ""], rows)]
    return "\n".join(lines)


def doctor_text(report: dict[str, Any]) -> str:
    marks = {True: "ok  ", False: "FAIL", None: "--  "}
    lines = []
    for check in report["checks"]:
        lines.append(f"{marks[check['ok']]} {check['name']}: {check['detail']}")
        if check["fix"] and check["ok"] is False:
            lines.append(f"     fix: {check['fix']}")
    lines.append("ready for real calls" if report["ok"] else "not ready yet: fix the FAIL lines above")
    return "\n".join(lines)


def phrase_progress(done: int, total: int, text: str) -> None:
    bar = "#" * (24 * done // total)
    end = "\n" if done == total or not sys.stderr.isatty() else ""
    print(f"\r[{bar:<24}] {done}/{total} {text[:40]:<40}", end=end, file=sys.stderr, flush=True)


def phrase_summary(result: dict[str, Any]) -> str:
    rows = result["phrases"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("generated", "cached", "failed")}
    lines = [f"{counts['generated']} generated, {counts['cached']} already cached, {counts['failed']} failed"]
    lines += [f"  failed ({r['reason']}): {r['text']} — {r['detail']}" for r in rows if r["status"] == "failed"]
    return "\n".join(lines)


def phrase_table(result: dict[str, Any]) -> str:
    rows = [[r["text"], r["file"], str(r["bytes"]), "yes" if r["current"] else "no"] for r in result["phrases"]]
    if not rows:
        return "no audio cached yet; run: twilio-caller phrases generate"
    return table(["TEXT", "FILE", "BYTES", "CURRENT"], rows)


def do_text(result: dict[str, Any]) -> str:
    parsed = result["parsed"]
    if "clarify" in parsed:
        question = parsed["clarify"]
        return "\n".join([question["question"], *(f"  - {option}" for option in question["options"])])
    line = f"{parsed['tool']} {json.dumps(parsed['arguments'], ensure_ascii=False)}"
    outcome = result["result"]
    if outcome is None:
        return f"{line}\n(dry run: nothing changed)"
    if "call_id" in outcome or outcome.get("dry_run"):
        return f"{line}\n{call_text(outcome)}"
    return f"{line}\n{json.dumps(outcome, indent=2, ensure_ascii=False)}"


def show_progress(event: dict[str, Any]) -> None:
    kind = event.get("event")
    text = {
        "dialing": f"dialing {event.get('to')} …",
        "said": f"  assistant: {event.get('text')}",
        "heard": f"  callee:    \"{event.get('text')}\"" + (
            f" (confidence {event['confidence']:.2f})" if event.get("confidence") is not None else ""),
        "silence": "  (no answer heard)",
        "answered": "answered",
        "opted-out": "the callee asked not to be called again: contact marked opted out",
        "voicemail": "an answering machine picked up: leaving the message after the beep",
        "pressed": f"  pressed {event.get('digits')}",
        "unsteered": "nobody steered the call: closing it politely",
    }.get(str(kind), str(kind))
    print(text, file=sys.stderr, flush=True)


def server_status_text(status: dict[str, Any]) -> str:
    instance = f"instance {status['instance_id']}, " if status.get("instance_id") else ""
    lines = [f"server {status['pid']} ({instance}{status['mode']} mode, version {status['version']}): "
             f"webhook port {status['webhook_port']}, {status['live_calls']} live call(s)"]
    lines += [f"  {key}: {value}" for key, value in (status.get("settings") or {}).items() if key != "mode"]
    if status.get("current"):
        lines.append("it runs with the current settings")
    else:
        lines.append(f"not current: {', '.join(status.get('differs') or [])} changed since it started; "
                     "the next call restarts it when no call is live")
    return "\n".join(lines)


def latency_table(result: dict[str, Any]) -> str:
    """`twilio-caller latency`: one line per figure."""
    lines = [f"latency over the last {result['calls']} calls (ms)"]
    for name, figure in result["figures"].items():
        p50, p95 = (f"{v:.0f}" if v is not None else "-" for v in (figure["p50_ms"], figure["p95_ms"]))
        lines.append(f"  {name.removesuffix('_ms'):<28} p50 {p50:>7}  p95 {p95:>7}  ({figure['samples']} samples)")
    return "\n".join(lines)
