"""Relayed messages rephrased to be spoken by the assistant on the owner's behalf
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
`say …` speaks the words as given, unless they are in the owner's first person."""

from __future__ import annotations

import re


from twilio_caller.sentences.context import Context, Parse, clarify


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


def too_long(action: str, to: str, spoken: str, context: Context) -> Parse | None:
    from twilio_caller.call_request import MESSAGE_MAX

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
        return f"{owner} asked me to remind you {_owner_named(what, owner)}{sentence_end(ending)}", False, remind.group("what")
    wish = patterns["wish"].fullmatch(action)
    if wish:
        what = to_second_person(wish.group("what"), _pronoun(wish.group("who"), wish.group("what")))
        return f"{owner} asked me to {wish.group('verb').lower()} you {what}{sentence_end(ending)}", False, wish.group("what")
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
            return f"{owner} asked me to pass on a message: please {vp}{sentence_end(ending)}"
        return f"{owner} asked if you could {vp}{sentence_end('')}"
    if has_first_person(body):
        return f"{owner} asked me to pass on a message: {body}{sentence_end(ending)}"
    return f"{owner} asked me to let you know that {_lower_first(body)}{sentence_end(ending)}"


def say_message(message: str, reported: bool, owner: str, ending: str = "") -> str:
    if reported or has_first_person(message):
        return relay_message(message, None, owner, ending)
    return capitalise(message) + sentence_end(ending)


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
        return standard if standard.startswith("I") or word.islower() else capitalise(standard)

    return re.sub(r"(?<!')\b[A-Za-z]+\b(?!')", fixed, text)


def sentence_end(ending: str) -> str:
    return ending if ending in ("!", ".") else "."


def capitalise(text: str) -> str:
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
    return capitalise(replacement) if original[:1].isupper() and original.lower() != "i" else replacement


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
