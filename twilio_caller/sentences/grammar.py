"""Sentences → tool calls: a deterministic grammar (no language model).

`parse(text, context)` turns "call Contact1 and tell her I'll be late" into
`{"tool": "call", "arguments": {...}}` for one of skill.yaml's tools, or into
`{"clarify": {"reason", "question", "options"}}` when the sentence is ambiguous, names
nobody in the contact book, or cannot be understood — it never guesses. Every option of a
clarification is a complete sentence that parses without ambiguity: an agent may put the
question to the user and send the option they pick back through `run_command`. What the
assistant then says is phrased by rephrase.py."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from twilio_caller import when
from twilio_caller.errors import InvalidInputError

from twilio_caller.sentences.context import Context, KnownCall, Parse, clarify, tool
from twilio_caller.sentences.rephrase import capitalise, phrase, sentence_end, too_long


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
            return clarify("not_understood", capitalise(exc.message.removeprefix("at: ")) + ".")
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
    overlong = too_long(action, to, spoken[0], context)
    if overlong is not None:
        return overlong
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
        arguments["message"] = capitalise(goodbye) + sentence_end(sentence.ending)
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
    overlong = too_long(action, call.name or call.number, spoken[0], context)
    if overlong is not None:
        return overlong
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
