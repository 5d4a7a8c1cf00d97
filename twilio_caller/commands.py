"""Sentences → tool calls: a deterministic grammar (no language model).

`parse(text, context)` turns "call Contact1 and tell her I'll be late" into
`{"tool": "call", "arguments": {...}}` for one of skill.yaml's tools, or into
`{"clarify": {"reason", "question", "options"}}` when the sentence is ambiguous, names
nobody in the contact book, or cannot be understood — it never guesses. Every option of a
clarification is a complete sentence that parses without ambiguity: an agent may put the
question to the user and send the option they pick back through `run_command`.

Relayed messages are rephrased to be spoken by the assistant on the owner's behalf
(identity.owner_name, "Robert" below). The config has no owner pronoun, so the owner is
never turned into "he" or "she":
  - words about the callee ("tell her …her keys…") become second person ("your keys"),
    with the verb agreeing ("she is" → "you are");
  - a message in the owner's own first person is framed as a message from them:
    "tell her I'll be late" → "Robert asked me to pass on a message: I'll be late.";
  - otherwise it is reported: "tell him dinner is at 8" →
    "Robert asked me to let you know that dinner is at 8.";
  - requests and questions: "ask her to bring wine" → "Robert asked if you could bring
    wine."; "ask him if he's free" → "Robert would like to know: are you free?".
`say …` speaks the words as given, unless they are in the owner's first person.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from twilio_caller import when
from twilio_caller.call_status import LIVE
from twilio_caller.errors import InvalidInputError

if TYPE_CHECKING:
    from twilio_caller.runtime import Runtime

Parse = dict[str, Any]


# --- what the grammar knows about the world --------------------------------------------


@dataclass(frozen=True)
class KnownCall:
    call_id: str
    name: str | None
    number: str
    live: bool


@dataclass(frozen=True)
class Context:
    """The contact book's names, the owner's name and the recent calls (newest first)."""

    contacts: Sequence[str]
    owner: str = "Robert"
    calls: Sequence[KnownCall] = ()
    now: datetime | None = None  # for "tomorrow at 9am"; None: the phrase is passed on as written
    timezone: str = "America/Chicago"  # the owner's

    @classmethod
    def from_runtime(cls, rt: Runtime, recent: int = 50) -> Context:
        calls = [
            KnownCall(c["call_id"], c["to"]["name"], c["to"]["number"], c["status"] in LIVE)
            for c in rt.calls.list(limit=recent)
        ]
        names = [contact.name for contact in rt.contacts.all()]
        return cls(contacts=names, owner=rt.config.get("identity.owner_name"), calls=calls,
                   now=rt.clock.now(), timezone=rt.config.get("safety.timezone"))

    @property
    def live_calls(self) -> list[KnownCall]:
        return [call for call in self.calls if call.live]

    def recent_names(self, limit: int = 3) -> list[str]:
        names: list[str] = []
        for call in self.calls:
            if call.name and call.name not in names:
                names.append(call.name)
        return names[:limit]


# --- the entry points ------------------------------------------------------------------


def run_command(rt: Runtime, *, text: str, dry_run: bool = False) -> dict[str, Any]:
    """Parse a sentence, then run the tool it names through the manifest, like any tool call.
    A clarification runs nothing. With dry_run a call only checks the contact and the safety
    rules; other tools that change something do not run (result null); read-only ones do."""
    from twilio_caller.manifest import invoke, load_manifest

    parsed = parse(text, Context.from_runtime(rt))
    if "clarify" in parsed:
        return {"parsed": parsed, "result": None}
    tool, arguments = parsed["tool"], parsed["arguments"]
    if dry_run and tool == "call":
        arguments = {**arguments, "dry_run": True}
    elif dry_run and load_manifest().tool(tool).side_effecting:
        return {"parsed": parsed, "result": None}
    return {"parsed": parsed, "result": invoke(tool, arguments, rt)}


def parse(text: str, context: Context) -> Parse:
    sentence = Sentence.of(text)
    if not sentence.body:
        return clarify("not_understood", "What should I do? Say, for example, whom to call and what to tell them.")
    leading = _TIME_FIRST.fullmatch(sentence.body)
    if leading:
        return _timed_first(leading, sentence, context)
    correction = _CORRECTION.fullmatch(sentence.body)
    if correction:
        return _corrected(correction, sentence, context)
    return _parse_sentence(sentence, context)


# --- when: "call Contact1 tomorrow at 9am and …", "in 20 minutes, call …" -----------------

_TIME_AFTER_TARGET = re.compile(rf"^\s+(?P<when>{when.PHRASE})(?=$|\s|,)", re.IGNORECASE)
_TIME_FIRST = re.compile(rf"(?P<when>{when.PHRASE})\s*,?\s+(?P<rest>(?:call|ring|phone|dial|tell|remind|relay|"
                         r"let|give)\b.+)", re.IGNORECASE)


def _timed_first(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    phrase_ = match.group("when")
    parsed = parse(match.group("rest") + sentence.ending, context)
    if "clarify" in parsed:
        options = [f"{phrase_}, {option}" for option in parsed["clarify"]["options"]]
        return clarify(parsed["clarify"]["reason"], parsed["clarify"]["question"], options)
    return _timed(parsed, phrase_, context)


def _timed(parsed: Parse, phrase_: str | None, context: Context) -> Parse:
    """A call with `at`: the time in the owner's time zone (as written, without a clock)."""
    if phrase_ is None or parsed.get("tool") != "call":
        return parsed
    if parsed["arguments"].get("keep_open"):
        return clarify("not_understood", "A call for later can't stay on the line: nobody steers it "
                       "when it is dialed. Ask it as a question instead, or call now.")
    at = " ".join(phrase_.split())
    if context.now is not None:
        try:
            due = when.due_at(at, context.now, context.timezone)
        except InvalidInputError as exc:
            return clarify("not_understood", _capitalise(exc.message.removeprefix("at: ")) + ".")
        at = due.astimezone(ZoneInfo(context.timezone)).strftime("%Y-%m-%dT%H:%M")
    return tool("call", **{**parsed["arguments"], "at": at})


def _parse_sentence(sentence: Sentence, context: Context) -> Parse:
    for rule in RULES:
        match = rule.pattern.fullmatch(sentence.body)
        if match:
            return rule.handle(match, sentence, context)
    return clarify(
        "not_understood",
        f"I didn't understand {sentence.body!r}. I can call a contact to tell or ask them "
        "something, hang up, add or remove contacts, and show past calls.",
    )


def tool(name: str, /, **arguments: Any) -> Parse:
    return {"tool": name, "arguments": arguments}


def clarify(reason: str, question: str, options: Sequence[str] = ()) -> Parse:
    return {"clarify": {"reason": reason, "question": question, "options": list(options)}}


# --- the sentence ----------------------------------------------------------------------

_LEADING = re.compile(
    r"^(?:(?:hey|hi|ok|okay|so|now)\b[,!]?\s+)?"
    r"(?:(?:please|kindly|can you|could you|would you|will you|i need you to|i want you to|"
    r"i'd like you to|go ahead and|quickly)\b[,]?\s+)*",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"(?:\s*,\s*(?:please|thanks|thank you|cheers))+\s*$", re.IGNORECASE)
_ENDING = re.compile(r"[\s.!?]+$")


@dataclass(frozen=True)
class Sentence:
    body: str  # without politeness, whitespace collapsed, final punctuation removed
    ending: str  # the final punctuation the person wrote ("" when none)

    @classmethod
    def of(cls, text: str) -> Sentence:
        cleaned = " ".join(text.replace("\u2019", "'").split())
        ending_match = _ENDING.search(cleaned)
        ending = ending_match.group().strip()[-1:] if ending_match and ending_match.group().strip() else ""
        body = _ENDING.sub("", cleaned)
        body = _TRAILING.sub("", _LEADING.sub("", body))
        return cls(body=_ENDING.sub("", body), ending=ending)

    def replace(self, span: tuple[int, int], text: str) -> str:
        return self.body[: span[0]] + text + self.body[span[1]:]


# --- resolving whom a sentence names ---------------------------------------------------

NUMBER = r"\+?\(?\d[\d\s().\-]{1,22}\d|\d{3}"
_NUMBER_AT_START = re.compile(rf"(?P<number>{NUMBER})(?=$|[\s,:])")
_PRONOUNS = {"her", "him", "them", "she", "he", "they"}


@dataclass(frozen=True)
class Target:
    """Whom a phrase names: a contact, a number, or a clarification to return instead."""

    to: str | None = None
    is_number: bool = False
    problem: Parse | None = None
    span: tuple[int, int] = (0, 0)  # where in the sentence the name was written
    rest: str = ""  # what follows the target


def named_contact(match: re.Match[str], group: str, sentence: Sentence, context: Context) -> str | Parse:
    """The contact that a group of the match names exactly (regardless of case), else a
    clarification whose options are the sentence with the closest names in its place."""
    name = _strip_article(match.group(group))
    by_key = {contact.casefold(): contact for contact in context.contacts}
    if name.casefold() in by_key:
        return by_key[name.casefold()]
    reason, question, names = _unknown(name, context)
    return clarify(reason, question, [sentence.replace(match.span(group), n) for n in names])


def find_target(text: str, offset: int, context: Context, sentence: Sentence,
                *, direct: bool = False) -> Target:
    """The contact name or number `text` starts with (`offset` into the sentence)."""
    number = _NUMBER_AT_START.match(text)
    if number:
        end = number.end("number")
        return Target(to=number.group("number").strip(), is_number=True,
                      span=(offset, offset + end), rest=text[end:])
    skip = len(text) - len(_strip_article(text, keep_tail=True))
    candidate = text[skip:]
    for contact in sorted(context.contacts, key=len, reverse=True):
        if _starts_with_name(candidate, contact):
            end = skip + len(contact)
            return Target(to=contact, span=(offset, offset + end), rest=text[end:])
    words = (_NAME_WORDS if direct else _TARGET_WORDS).match(text)
    said = words.group("words") if words else text.split(" ", 1)[0]
    span = (offset, offset + len(said))
    rest = text[len(said):]
    return Target(problem=_target_problem(_strip_article(said), span, context, sentence),
                  span=span, rest=rest)


_TARGET_WORDS = re.compile(r"(?P<words>.+?)(?=$|,|:|\s+(?:and|to|then|so|that|about|with)\b)", re.IGNORECASE)
_NAME_WORDS = re.compile(r"(?P<words>(?:my\s+|our\s+)?[A-Z][\w.-]*(?:\s+(?!I\b)[A-Z][\w.-]*)*)(?=$|[\s,:'])")
_ARTICLE = re.compile(r"^(?:my|our|the)\s+", re.IGNORECASE)


def _strip_article(text: str, keep_tail: bool = False) -> str:
    stripped = _ARTICLE.sub("", text.strip()) if not keep_tail else _ARTICLE.sub("", text)
    return stripped


def _starts_with_name(text: str, name: str) -> bool:
    if not text.casefold().startswith(name.casefold()):
        return False
    tail = text[len(name):]
    return tail == "" or not (tail[0].isalnum() or tail[0] == "-")


def _target_problem(said: str, span: tuple[int, int], context: Context, sentence: Sentence) -> Parse:
    if said.casefold() in _PRONOUNS:
        names = context.recent_names() or list(context.contacts)[:3]
        return clarify("missing_contact", f"Whom do you mean by {said!r}?",
                       [sentence.replace(span, name) for name in names])
    reason, question, names = _unknown(said, context)
    return clarify(reason, question, [sentence.replace(span, name) for name in names])


def _unknown(said: str, context: Context) -> tuple[str, str, list[str]]:
    """Why `said` names no contact, and the closest contacts' names."""
    key = said.casefold()
    by_key = {contact.casefold(): contact for contact in context.contacts}
    partial = [name for k, name in by_key.items() if key and re.search(rf"(?:^|\s){re.escape(key)}(?:\s|$)", k)]
    if partial:
        return ("ambiguous_contact" if len(partial) > 1 else "unknown_contact",
                f"Which contact do you mean by {said!r}?", sorted(partial))
    close = [by_key[k] for k in _closest(key, list(by_key))]
    if close:
        return "unknown_contact", f"There is no contact named {said!r}. Did you mean {_or(close)}?", close
    advice = (f"There is no contact named {said!r}. Only contacts can be called: add them first, "
              f"for example \"add {said} at 312-555-0123\".")
    return "unknown_contact", advice, []


def _closest(key: str, candidates: list[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The most similar candidates, best first; ties in alphabetical order (stable output)."""
    scored = [(difflib.SequenceMatcher(None, key, candidate).ratio(), candidate) for candidate in candidates]
    ranked = sorted((pair for pair in scored if pair[0] >= cutoff), key=lambda pair: (-pair[0], pair[1]))
    return [candidate for _, candidate in ranked[:n]]


def _or(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# --- calls -----------------------------------------------------------------------------

_KEEP_OPEN = re.compile(
    r"(?:,?\s+and)?\s+(?:stay on the line|keep the (?:line|call) open|don't hang up|do not hang up)$",
    re.IGNORECASE,
)
_CONNECTOR = re.compile(r"^(?:\s*,\s*|\s*:\s*|\s+)(?:and\s+(?:then\s+)?|then\s+|to\s+|so\s+)?", re.IGNORECASE)


def _call(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    rest = match.group("rest")
    offset = match.start("rest")
    target = find_target(rest, offset, context, sentence)
    if target.problem is not None:
        return target.problem
    assert target.to is not None
    several = _several_contacts(target, context, sentence)
    if several is not None:
        return several
    rest, timing = target.rest, _TIME_AFTER_TARGET.match(target.rest)
    if timing:
        rest = rest[timing.end():]
    parsed = _call_action(target.to, _CONNECTOR.sub("", rest, count=1), sentence, context)
    return _timed(parsed, timing.group("when") if timing else None, context)


_ALSO = re.compile(r"^(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*)", re.IGNORECASE)


def _several_contacts(first: Target, context: Context, sentence: Sentence) -> Parse | None:
    """"call Contact1 and Contact2 …": one person per call, so ask which, listing them; each
    option is the sentence with just one of them."""
    names, last = [first.to], first
    while (also := _ALSO.match(last.rest)) is not None:
        offset = last.span[1] + also.end()
        following = find_target(last.rest[also.end():], offset, context, sentence)
        if following.problem is not None or following.is_number:
            break
        names.append(following.to)
        last = following
    if len(names) < 2:
        return None
    span = (first.span[0], last.span[1])
    listed = [name for name in dict.fromkeys(names) if name is not None]
    return clarify("several_contacts", f"I can call one person at a time. Whom should I call: {_or(listed)}?",
                   [sentence.replace(span, name) for name in listed])


def _relay_to(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    """"relay to Contact1 that …", "pass on to Contact2: …"."""
    target = find_target(match.group("rest"), match.start("rest"), context, sentence)
    if target.problem is not None:
        return target.problem
    assert target.to is not None
    message = _RELAYED.sub("", target.rest, count=1).strip()
    if not message:
        return clarify("missing_message", f"What should I tell {target.to}?")
    return _call_action(target.to, f"tell {target.to} that {message}", sentence, context)


_RELAYED = re.compile(r"^\s*[,:]?\s*(?:that\b)?\s*[,:]?", re.IGNORECASE)
_CORRECTION = re.compile(
    r"(?P<first>.+?)\s*(?P<stop>[.;!]|,)?\s+(?:(?:no|wait|sorry|oops)\b[,.!]?\s+)*actually\b,?\s+"
    r"(?:(?:call|ring|phone|dial|tell|make\s+(?:that|it))\s+(?P<who>.+?)(?:\s*,?\s+instead)?"
    r"|(?P<who2>.+?)\s*,?\s+instead)",
    re.IGNORECASE,
)


def _corrected(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    """"call Contact1 and tell her I'll be late. Actually call Contact2 instead": the request
    of the first part, to the person of the correction."""
    if not match.group("stop") and not re.search(r"\b(?:no|wait|sorry|oops)\b[,.!]?\s+actually\b",
                                                 sentence.body, re.IGNORECASE):
        return _parse_sentence(sentence, context)  # "actually" inside the message, not a correction
    group = "who" if match.group("who") else "who2"
    stop = match.group("stop") or ""
    first = _parse_sentence(Sentence(match.group("first"), stop if stop in ".!" else sentence.ending), context)
    if first.get("tool") != "call":
        return clarify("not_understood", f"I couldn't apply the correction to {match.group('first')!r}. "
                       f"Say the whole request again, e.g. \"call {match.group(group)} and tell them …\".")
    target = find_target(match.group(group), match.start(group), context, sentence)
    if target.problem is not None:
        return target.problem
    if target.rest.strip():
        return clarify("not_understood", f"I didn't understand the correction {match.group(group)!r}: "
                       f"say the whole request again, e.g. \"call {target.to} and tell them …\".")
    return tool("call", **{**first["arguments"], "to": target.to})


def _give(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    """"give Contact1 a call and tell her …"."""
    target = find_target(match.group("rest"), match.start("rest"), context, sentence)
    if target.problem is not None:
        return target.problem
    assert target.to is not None
    tail = re.sub(r"^\s+a\s+(?:call|ring|buzz)\b", "", match.group("a_call"), flags=re.IGNORECASE)
    return _call_action(target.to, _CONNECTOR.sub("", tail, count=1), sentence, context)


def _call_action(to: str, action: str, sentence: Sentence, context: Context) -> Parse:
    keep_open = bool(_KEEP_OPEN.search(action))
    action = _KEEP_OPEN.sub("", action).strip()
    if not action:
        return clarify("missing_message", f"What should I tell {to}, or ask them?")
    spoken = phrase(action, to, sentence.ending, context)
    if spoken is None:
        return clarify("not_understood",
                       f"What should I say to {to}? Try \"tell them …\", \"ask them …\" or \"say …\".")
    too_long = _too_long(action, to, spoken[0], context)
    if too_long is not None:
        return too_long
    message, interactive = spoken
    arguments: dict[str, Any] = {"to": to, "message": message}
    if keep_open:
        arguments["keep_open"] = True
    elif interactive:
        arguments["interactive"] = True
    return tool("call", **arguments)


def _tell_direct(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    """"tell Contact1 I'll be late", "ask Contact2 if …": a call, without the word call."""
    verb = match.group("verb")
    rest = match.group("rest")
    target = find_target(rest, match.start("rest"), context, sentence, direct=True)
    if target.problem is not None:
        if verb.lower() in ("tell", "ask") and rest.split(" ", 1)[0].lower() in ("her", "him", "them"):
            return _say_live(sentence, context, f"{verb} {rest}")
        return target.problem
    assert target.to is not None
    tail = target.rest
    return _call_action(target.to, f"{verb} {target.to}{tail}", sentence, context)


# --- phrasing: what the assistant says -------------------------------------------------

def _action_patterns(to: str) -> dict[str, re.Pattern[str]]:
    """The action phrases, with the callee written as a pronoun or by their name."""
    who = rf"(?P<who>her|him|them|{re.escape(to)})"
    forms = {
        "relay": rf"(?:tell|inform)\s+{who}(?:\s+that)?[:,]?\s+(?P<msg>.+)"
                 rf"|let\s+{who.replace('who', 'who2')}\s+know(?:\s+that)?[:,]?\s+(?P<msg2>.+)"
                 r"|(?:pass on|relay|give\s+(?:her|him|them)\s+the message)(?:\s+that)?[:,]?\s+(?P<msg3>.+)"
                 r"|leave\s+(?:(?:her|him|them)\s+)?a\s+message(?:\s+saying|\s+that)?[:,]?\s+(?P<msg4>.+)",
        "remind": rf"remind\s+{who}\s+(?P<what>(?:to|that|about|of)\s+.+)",
        "wish": rf"(?P<verb>wish|thank|congratulate)\s+{who}\s+(?P<what>.+)",
        "say": r"say(?P<that>\s+that)?[:,]?\s+(?P<msg>.+)",
        "ask": rf"ask\s+{who}[:,]?\s+(?P<q>.+)"
               r"|(?:ask|find out|check|see)\s+(?P<q2>(?:if|whether|what|when|where|who|how|why|which)\b.+)",
    }
    return {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in forms.items()}


def phrase(action: str, to: str, ending: str, context: Context) -> tuple[str, bool] | None:
    """What to say for an action ("tell her …", "ask him …", "say …"), and whether it asks."""
    spoken = _phrase(standard_spelling(action), to, ending, context)
    return None if spoken is None else spoken[:2]


WRITTEN_MAX = 1000  # the user's own words in one message; the framing added to them is not counted


def _too_long(action: str, to: str, spoken: str, context: Context) -> Parse | None:
    from twilio_caller.parser import MESSAGE_MAX

    written = " ".join((written_words(action, to, context) or "").split())
    if len(written) <= WRITTEN_MAX and len(spoken) <= MESSAGE_MAX:
        return None
    return clarify("message_too_long", f"The message is {len(written):,} characters long; at most "
                   f"{WRITTEN_MAX:,} can be passed on in one call. What shorter message should I give?")


def written_words(action: str, to: str, context: Context) -> str | None:
    """The part of an action the user wrote for the callee ("I'll be late" of "tell her I'll
    be late"): what the message limit counts, without the framing the assistant adds."""
    spoken = _phrase(action, to, "", context)
    return None if spoken is None else spoken[2]


def _phrase(action: str, to: str, ending: str, context: Context) -> tuple[str, bool, str] | None:
    owner = context.owner
    patterns = _action_patterns(to)
    relay = patterns["relay"].fullmatch(action)
    if relay:
        who = relay.group("who") or relay.group("who2") or ""
        message = next(m for m in relay.group("msg", "msg2", "msg3", "msg4") if m)
        return relay_message(message, _pronoun(who, message), owner, ending), False, message
    remind = patterns["remind"].fullmatch(action)
    if remind:
        what = to_second_person(remind.group("what"), _pronoun(remind.group("who"), remind.group("what")))
        return f"{owner} asked me to remind you {_owner_named(what, owner)}{_end(ending)}", False, remind.group("what")
    wish = patterns["wish"].fullmatch(action)
    if wish:
        what = to_second_person(wish.group("what"), _pronoun(wish.group("who"), wish.group("what")))
        return f"{owner} asked me to {wish.group('verb').lower()} you {what}{_end(ending)}", False, wish.group("what")
    said = patterns["say"].fullmatch(action)
    if said:
        return say_message(said.group("msg"), bool(said.group("that")), owner, ending), False, said.group("msg")
    asked = patterns["ask"].fullmatch(action)
    if asked:
        question = asked.group("q") or asked.group("q2")
        return question_message(question, _pronoun(asked.group("who") or to, question), owner), True, question
    return None


_THIRD_PERSON = re.compile(r"\b(?:(?P<her>she|her|hers|herself)|(?P<him>he|him|his|himself)"
                           r"|(?P<them>they|them|their|theirs|themselves))\b", re.IGNORECASE)


def _pronoun(who: str, message: str) -> str | None:
    """The callee's pronoun: the one used for them ("tell her"), else — when they were named
    ("tell Contact1 …") — the first third-person pronoun of the message, taken to mean them."""
    lowered = who.lower()
    if lowered in ("her", "him", "them"):
        return lowered
    if not who:
        return None
    first = _THIRD_PERSON.search(message)
    return first.lastgroup if first else None


def relay_message(message: str, pronoun: str | None, owner: str, ending: str = "") -> str:
    body = to_second_person(message, pronoun)
    request = re.match(r"^to\s+(?P<vp>.+)$", body, re.IGNORECASE)
    if request:
        vp = _owner_named(request.group("vp"), owner)
        if has_first_person(vp):
            return f"{owner} asked me to pass on a message: please {vp}{_end(ending)}"
        return f"{owner} asked if you could {vp}{_end('')}"
    if has_first_person(body):
        return f"{owner} asked me to pass on a message: {body}{_end(ending)}"
    return f"{owner} asked me to let you know that {_lower_first(body)}{_end(ending)}"


def say_message(message: str, reported: bool, owner: str, ending: str = "") -> str:
    if reported or has_first_person(message):
        return relay_message(message, None, owner, ending)
    return _capitalise(message) + _end(ending)


def question_message(question: str, pronoun: str | None, owner: str) -> str:
    q = to_second_person(question, pronoun)
    yes_no = re.match(r"^(?:if|whether)\s+(?P<clause>.+)$", q, re.IGNORECASE)
    if yes_no:
        clause = yes_no.group("clause")
        direct = invert(clause, lexical=True)
        if direct is not None:
            return f"{owner} would like to know: {direct}?"
        if has_first_person(clause):
            return f"{owner} asked me to ask you whether {clause}."
        return f"{owner} would like to know whether {clause}."
    request = re.match(r"^to\s+(?P<vp>.+)$", q, re.IGNORECASE)
    if request:
        request = re.match(r"^to\s+(?P<vp>.+)$", "to " + _owner_named(request.group("vp"), owner))
        assert request is not None
        if has_first_person(request.group("vp")):
            return f"{owner} would like to know: could you {request.group('vp')}?"
        return f"{owner} asked if you could {request.group('vp')}."
    about = re.match(r"^(?P<prep>about|for)\s+(?P<what>.+)$", q, re.IGNORECASE)
    if about:
        return f"{owner} asked me to ask you {about.group('prep').lower()} {about.group('what')}."
    if re.match(r"^(?:what|when|where|who|whom|whose|which|why|how)\b", q, re.IGNORECASE):
        if not has_first_person(q):
            return f"{owner} would like to know {_lower_first(q)}."
        direct = invert(q, lexical=False)
        if direct is not None:
            return f"{owner} would like to know: {direct}?"
        return f"{owner} asked me to ask you {_lower_first(q)}."
    return f"{owner} would like to know: {q}?"


_OWNER_AS_OBJECT = re.compile(r"\b(?P<word>me|my|mine|myself)\b", re.IGNORECASE)
_OWNER_AS_SUBJECT = re.compile(r"\b(?:i|i'm|i'll|i've|i'd|we|we're|we'll|we've|we'd|us|our|ours|ourselves)\b",
                               re.IGNORECASE)


def _owner_named(request: str, owner: str) -> str:
    """In a request the callee is to act on ("to call me back"), the owner named where they are
    only its object: said by the assistant, "call me back" would mean the assistant."""
    if _OWNER_AS_SUBJECT.search(request):
        return request
    return _OWNER_AS_OBJECT.sub(lambda m: owner if m.group("word").lower() in ("me", "myself") else f"{owner}'s",
                                request)


_INFORMAL = {
    "i": "I", "im": "I'm", "ive": "I've", "dont": "don't", "cant": "can't", "didnt": "didn't",
    "doesnt": "doesn't", "isnt": "isn't", "wasnt": "wasn't", "arent": "aren't", "werent": "weren't",
    "havent": "haven't", "hasnt": "hasn't", "couldnt": "couldn't", "wouldnt": "wouldn't",
    "shouldnt": "shouldn't", "thats": "that's", "whats": "what's", "youre": "you're",
    "theyre": "they're", "shes": "she's", "u": "you", "pls": "please", "plz": "please", "thx": "thanks",
}


def standard_spelling(text: str) -> str:
    """Informal spellings a person types ("im running late") as they should be read aloud
    ("I'm running late"); words with another meaning ("ill", "well", "were") are left alone."""
    def fixed(match: re.Match[str]) -> str:
        word = match.group()
        standard = _INFORMAL.get(word.lower())
        if standard is None:
            return word
        return standard if standard.startswith("I") or word.islower() else _capitalise(standard)

    return re.sub(r"(?<!')\b[A-Za-z]+\b(?!')", fixed, text)


def _end(ending: str) -> str:
    return ending if ending in ("!", ".") else "."


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


_FUNCTION_WORDS = {
    "the", "a", "an", "this", "that", "these", "those", "it", "it's", "its", "there", "there's",
    "your", "you", "you're", "you'll", "you've", "you'd", "everything", "everyone", "nothing",
    "dinner", "lunch", "breakfast", "tomorrow", "today", "tonight", "his", "her", "their",
}


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first.lower() in _FUNCTION_WORDS else text


# --- grammar of persons ----------------------------------------------------------------

_FIRST_PERSON = re.compile(
    r"\b(?:i|i'm|i'll|i've|i'd|me|my|mine|myself|we|we're|we'll|we've|we'd|us|our|ours|ourselves)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z']+|[^A-Za-z']+")
_FORMS = {
    "her": ("she", "her", "hers", "herself"),
    "him": ("he", "him", "his", "himself"),
    "them": ("they", "them", "their", "theirs", "themselves", "themself"),
}
_SUBJECT_VERBS = {
    "is": "are", "was": "were", "has": "have", "does": "do", "isn't": "aren't",
    "wasn't": "weren't", "hasn't": "haven't", "doesn't": "don't",
}
_ADVERBS = {"always", "never", "also", "still", "really", "just", "usually", "often", "already",
            "probably", "definitely", "only", "even", "sometimes", "actually"}
_PARTICIPLES = {"been", "got", "gotten", "had", "done", "gone", "seen", "made", "taken", "given",
                "left", "finished", "forgotten", "heard", "told"}
_NOT_NOUN = {
    "up", "down", "in", "out", "on", "off", "at", "to", "for", "from", "with", "about", "back",
    "over", "tomorrow", "today", "tonight", "later", "soon", "now", "again", "too", "that",
    "when", "if", "and", "or", "but", "because", "before", "after", "so", "a", "an", "the",
    "some", "this", "my", "your", "know", "by", "around", "once", "there", "here", "as", "into",
}


def has_first_person(text: str) -> bool:
    return bool(_FIRST_PERSON.search(text))


def to_second_person(text: str, pronoun: str | None) -> str:
    """Words for the callee (her/him/them forms) → you/your, with the verb agreeing."""
    if pronoun is None:
        return text
    tokens = _WORD.findall(text)
    words = [i for i, token in enumerate(tokens) if token[0].isalpha() or token[0] == "'"]
    forms = _FORMS[pronoun]
    for position, index in enumerate(words):
        word = tokens[index]
        following = [tokens[i] for i in words[position + 1:]]
        replacement = _second_person_word(word.lower(), forms, following)
        if replacement is not None:
            tokens[index] = _same_case(word, replacement)
            if word.lower() in (forms[0],) and pronoun != "them":
                _agree(tokens, words[position + 1:])
    return "".join(tokens)


def _second_person_word(word: str, forms: tuple[str, ...], following: list[str]) -> str | None:
    subject, obj, possessive = forms[0], forms[1], forms[2]
    after = following[0].lower() if following else ""
    if word == subject:
        return "you"
    if word in (f"{subject}'s",):
        return "you've" if after in _PARTICIPLES else "you're"
    if word in (f"{subject}'re",):
        return "you're"
    for suffix in ("'ll", "'d", "'ve"):
        if word == subject + suffix:
            return "you" + suffix
    if word == obj and obj == "her":
        return "you" if not following or after in _NOT_NOUN else "your"
    if word == obj:
        return "you"
    if word == possessive and possessive in ("hers", "theirs"):
        return "yours"
    if word == possessive:  # his / their
        if possessive == "his" and (not following or after in _NOT_NOUN):
            return "yours"
        return "your"
    if word == "theirs":
        return "yours"
    if word in ("herself", "himself", "themselves", "themself"):
        return "yourself"
    return None


def _agree(tokens: list[str], following: list[int]) -> None:
    """Make the verb after a he/she turned into you agree: is → are, needs → need."""
    for index in following[:2]:
        word = tokens[index].lower()
        if word in _ADVERBS:
            continue
        if word in _SUBJECT_VERBS:
            tokens[index] = _same_case(tokens[index], _SUBJECT_VERBS[word])
        elif re.fullmatch(r"[a-z]{3,}", word) and word.endswith("s") and not word.endswith("ss"):
            tokens[index] = _same_case(tokens[index], _base_form(word))
        return


def _base_form(verb: str) -> str:
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if re.search(r"(?:ss|sh|ch|x|z|o)es$", verb):
        return verb[:-2]
    return verb[:-1]


def _same_case(original: str, replacement: str) -> str:
    return _capitalise(replacement) if original[:1].isupper() and original.lower() != "i" else replacement


_AUXILIARIES = {"am", "are", "is", "was", "were", "can", "could", "will", "would", "should", "shall",
                "may", "might", "must", "have", "has", "had", "do", "does", "did", "can't", "won't",
                "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "weren't", "couldn't",
                "wouldn't", "shouldn't", "haven't", "hasn't"}
_SUBJECTS = {"i", "you", "we", "they", "it", "he", "she", "there"}
_CONTRACTED = {"'m": "am", "'re": "are", "'s": "is", "'ll": "will", "'ve": "have", "'d": "would"}


def invert(clause: str, *, lexical: bool) -> str | None:
    """"you're free" → "are you free"; "when I should come" → "when should I come".
    With `lexical`, "you want X" → "do you want X". None when no safe inversion is found."""
    words = clause.split(" ")
    for index, word in enumerate(words):
        lowered = word.lower()
        subject, _, contraction = lowered.partition("'")
        if subject in _SUBJECTS and contraction and "'" + contraction in _CONTRACTED:
            aux = _CONTRACTED["'" + contraction]
            return " ".join([*words[:index], aux, _subject_word(word.split("'")[0]), *words[index + 1:]])
        if lowered not in _SUBJECTS or index + 1 >= len(words):
            continue
        following = words[index + 1].lower()
        after = words[index + 2].lower() if index + 2 < len(words) else ""
        if following in ("have", "has", "had") and after not in _PARTICIPLES and not after.endswith("ed"):
            if not lexical or index != 0 or following == "had":
                return None
            do = "does" if lowered in ("he", "she", "it") else "do"
            return " ".join([do, _subject_word(word), "have", *words[2:]])
        if following in _AUXILIARIES:
            return " ".join([*words[:index], following, _subject_word(word), *words[index + 2:]])
        if lexical and index == 0 and not following.endswith("ed"):
            if lowered in ("he", "she", "it"):
                if not following.endswith("s"):
                    return None
                return " ".join(["does", lowered, _base_form(following), *words[2:]])
            return " ".join(["do", _subject_word(word), *words[1:]])
        return None
    return None


def _subject_word(word: str) -> str:
    return "I" if word.lower() == "i" else word.lower()


# --- contacts, the call log, live calls ------------------------------------------------


def _add_contact(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    groups = match.groupdict()
    name = (groups.get("name") or groups["name2"]).strip().strip("\"'")
    number = (groups.get("number") or groups["number2"]).strip()
    return tool("add_contact", name=name, number=number)


def _remove_contact(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    name = named_contact(match, "name", sentence, context)
    return name if isinstance(name, dict) else tool("remove_contact", name=name)


def _rename_contact(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    name = named_contact(match, "old", sentence, context)
    new_name = match.group("new").strip().strip("\"'")
    return name if isinstance(name, dict) else tool("update_contact", name=name, new_name=new_name)


def _change_number(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    group = "name" if match.group("name") else "name2"
    name = named_contact(match, group, sentence, context)
    number = (match.group("number") or match.group("number2")).strip()
    return name if isinstance(name, dict) else tool("update_contact", name=name, number=number)


def _list_contacts(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    return tool("list_contacts")


def _list_calls(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    arguments: dict[str, Any] = {}
    groups = match.groupdict()
    if groups.get("who"):
        name = named_contact(match, "who", sentence, context)
        if isinstance(name, dict):
            return name
        arguments["contact"] = name
    if groups.get("when"):
        arguments["since"] = groups["when"].lower()
    status = (groups.get("status") or "").lower()
    if status:
        arguments["status"] = _STATUS_WORDS[status]
    if groups.get("last"):
        arguments["limit"] = 1
    return tool("list_calls", **arguments)


_STATUS_WORDS = {"missed": "no-answer", "unanswered": "no-answer", "failed": "failed",
                 "busy": "busy", "completed": "completed", "canceled": "canceled",
                 "cancelled": "canceled"}


def _safety(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    return tool("safety_rules")


def _hangup(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    call = _live_call(context, match, sentence, "hang up")
    if isinstance(call, dict):
        return call
    goodbye = match.group("bye")
    arguments: dict[str, Any] = {"call_id": call.call_id}
    if goodbye:
        arguments["message"] = _capitalise(goodbye) + _end(sentence.ending)
    return tool("hangup", **arguments)


def _wait(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    call = _live_call(context, None, sentence, "keep listening")
    return call if isinstance(call, dict) else tool("wait", call_id=call.call_id)


def _status(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    calls = list(context.calls)
    if match.groupdict().get("who"):
        name = named_contact(match, "who", sentence, context)
        if isinstance(name, dict):
            return name
        calls = [call for call in calls if call.name == name]
    if not calls:
        return clarify("no_call", "There is no call to report on yet.")
    return tool("call_status", call_id=calls[0].call_id)


def _say_live(sentence: Sentence, context: Context, action: str) -> Parse:
    """"say …" or "tell her …" with no one named: into the live call."""
    live = context.live_calls
    if len(live) != 1:
        problem = _live_call(context, None, sentence, "say that")
        assert isinstance(problem, dict)
        return problem
    call = live[0]
    spoken = phrase(action, call.name or call.number, sentence.ending, context)
    if spoken is None:
        return clarify("not_understood", "What should I say?")
    too_long = _too_long(action, call.name or call.number, spoken[0], context)
    if too_long is not None:
        return too_long
    message, _ = spoken
    return tool("say", call_id=call.call_id, message=message)


def _say(match: re.Match[str], sentence: Sentence, context: Context) -> Parse:
    return _say_live(sentence, context, sentence.body)


def _live_call(context: Context, match: re.Match[str] | None, sentence: Sentence,
               doing: str) -> KnownCall | Parse:
    live = context.live_calls
    who = match.groupdict().get("who") if match else None
    if match and who and who.lower() not in _PRONOUNS:
        name = named_contact(match, "who", sentence, context)
        if isinstance(name, dict):
            return name
        live = [call for call in live if call.name == name]
        if not live:
            return clarify("no_live_call", f"There is no live call with {name}.")
    if not live:
        return clarify("no_live_call", f"There is no live call to {doing}: calls placed with "
                       "keep_open stay live until they end.")
    if len(live) > 1:
        names = [call.name or call.number for call in live]
        return clarify("several_live_calls", f"Which call should I {doing}: {_or(names)}?",
                       [f"{doing} on {name}" if doing == "hang up" else f"{doing} to {name}"
                        for name in names])
    return live[0]


# --- the rules, first match wins -------------------------------------------------------

Handler = Callable[[re.Match[str], Sentence, Context], Parse]


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    handle: Handler = field(compare=False)


def _rule(pattern: str, handle: Handler) -> Rule:
    return Rule(re.compile(pattern, re.IGNORECASE), handle)


_WHEN = r"(?:\s+(?P<when>today|yesterday))?"
_CALLS = r"(?:phone\s+)?calls?(?:\s+log|\s+history)?"

RULES: tuple[Rule, ...] = (
    _rule(r"(?:hang up|end|finish|stop)(?:\s+(?:the|this)\s+(?:call|phone))?"
          r"(?:\s+(?:on|with|to)\s+(?P<who>.+?))?(?:\s*,?\s+and\s+say\s+(?P<bye>.+))?", _hangup),
    _rule(r"(?:wait|keep listening|listen)(?:\s+for\s+(?:an?|the|their|her|his)\s+(?:answer|reply))?", _wait),
    _rule(r"(?:what(?:'s| is)\s+)?(?:the\s+)?status\s+of\s+(?:the|my)\s+(?:last\s+|latest\s+|current\s+)?call"
          r"(?:\s+(?:to|with)\s+(?P<who>.+))?", _status),
    _rule(r"is\s+the\s+call(?:\s+(?:to|with)\s+(?P<who>.+?))?\s+still\s+(?:going|on|live|open)", _status),
    _rule(rf"(?:add|save|create)(?:\s+(?:a\s+)?(?:new\s+)?contact)?(?:\s+(?:named|called))?\s+(?P<name>.+?)"
          rf"(?:'s\s+number)?(?:\s+(?:at|as|with(?:\s+the)?\s+number|on|number|is)|\s*[:,])?\s+(?P<number>{NUMBER})"
          r"(?:\s+to\s+(?:my\s+|the\s+)?contacts?(?:\s+list|\s+book)?)?"
          rf"|new\s+contact[:,]?\s+(?P<name2>.+?)[,:]?\s+(?P<number2>{NUMBER})", _add_contact),
    _rule(rf"(?:add|save)\s+(?P<number>{NUMBER})\s+as\s+(?P<name>.+?)(?:\s+to\s+(?:my\s+|the\s+)?contacts?)?", _add_contact),
    _rule(r"(?:remove|delete|forget)(?:\s+(?:the\s+)?contact)?\s+(?P<name>.+?)"
          r"(?:\s+from\s+(?:my\s+|the\s+)?(?:contacts?|address book|allowlist)(?:\s+list|\s+book)?)?", _remove_contact),
    _rule(r"rename(?:\s+(?:the\s+)?contact)?\s+(?P<old>.+?)\s+(?:to|as)\s+(?P<new>.+)", _rename_contact),
    _rule(rf"(?:change|update|set)\s+(?P<name>.+?)'s?\s+(?:phone\s+)?number\s+to\s+(?P<number>{NUMBER})"
          rf"|(?:change|update)\s+(?:the\s+)?(?:phone\s+)?number\s+(?:of|for)\s+(?P<name2>.+?)\s+to\s+(?P<number2>{NUMBER})",
          _change_number),
    _rule(r"(?:show|list|display|what are|who are)(?:\s+me)?(?:\s+(?:my|all|the|all my|all of my))?\s+contacts?"
          r"(?:\s+list|\s+book)?|who\s+(?:can|may)\s+(?:you|i)\s+call|contacts", _list_contacts),
    _rule(r"who\s+(?:did|have)\s+(?:i|we|you)\s+(?:call|called|phone|phoned|ring|rung|rang)" + _WHEN, _list_calls),
    _rule(r"when\s+did\s+(?:i|we|you)\s+(?P<last>last)\s+(?:call|phone|ring|speak to|talk to)\s+(?P<who>.+)",
          _list_calls),
    _rule(r"what\s+did\s+(?P<who>.+?)\s+(?P<last>say|tell you|answer)", _list_calls),
    _rule(rf"(?:(?:show|list|display|get|give)(?:\s+me)?(?:\s+(?:my|the|all|all my|all the))?\s+)?"
          rf"(?:(?P<status>missed|unanswered|failed|busy|completed|canceled|cancelled)\s+|recent\s+|latest\s+|past\s+)?"
          rf"{_CALLS}(?:\s+(?:with|to|for|from)\s+(?P<who>.+?))?{_WHEN}", _list_calls),
    _rule(r"(?:what are\s+)?(?:the\s+)?safety(?:\s+rules)?|(?:what are\s+)?(?:the\s+)?calling hours"
          r"|how many calls(?:\s+(?:can|may)\s+(?:i|you)\s+(?:still\s+)?make|\s+are\s+left|\s+do\s+i\s+have\s+left)"
          r"(?:\s+today)?", _safety),
    _rule(r"(?:call|ring|phone|dial|telephone)(?:\s+up)?\s+(?P<rest>.+)", _call),
    _rule(r"give\s+(?P<rest>.+?)(?P<a_call>\s+a\s+(?:call|ring|buzz)\b.*)", _give),
    _rule(r"(?:relay|pass\s+on|pass\s+along|forward)(?:\s+(?:a|the|this|my)\s+message)?\s+to\s+(?P<rest>.+)",
          _relay_to),
    _rule(r"(?P<verb>tell|ask|remind|let|wish|thank)\s+(?P<rest>.+)", _tell_direct),
    _rule(r"say\b.+", _say),
)

