"""TwiML documents, built only with the SDK's VoiceResponse (it escapes text and attributes;
callee speech is never spliced into markup by hand)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twilio.twiml.voice_response import Gather, VoiceResponse

from twilio_caller import voices
from twilio_caller.transport.port import Ask, EndCall, Hold, Line, Say, SendDigits, SessionCommand, Speech, Spoken


def render(command: SessionCommand, speech: Speech, url: Callable[[str, int], str]) -> str:
    """A neutral command as TwiML; `url(route, n)` is the webhook URL Twilio comes back to."""
    match command:
        case Say(lines=lines, resume=resume):
            return say_then_hold(speech, lines, url("hold", resume))
        case Ask(lines=lines, turn=turn):
            return ask(speech, lines, url("gather", turn))
        case Hold(resume=resume, lines=lines):
            return hold(url("hold", resume), speech, lines=lines)
        case SendDigits(digits=digits, resume=resume):
            return press(digits, url("hold", resume))
        case EndCall(lines=lines):
            return notify(speech, lines)


def notify(speech: Speech, lines: Sequence[Spoken]) -> str:
    """Say every line, then hang up."""
    response = VoiceResponse()
    for line in lines:
        _say(response, speech, line)
    response.hangup()
    return str(response)


def ask(speech: Speech, lines: Sequence[Spoken], action: str) -> str:
    """Say the lines inside a Gather that listens for speech and keys (ended by `#` or the
    timeout, as ConversationRelay's dtmfDetection joins them); the result (or its absence) is
    posted to `action` — actionOnEmptyResult makes silence a post too, so the server decides."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf speech",
        action=action,
        method="POST",
        timeout=speech.timeout,
        speech_timeout=speech.speech_timeout,
        speech_model=speech.speech_model,
        language=listening_language(speech, lines),
        hints=", ".join(speech.hints) if speech.hints else None,
        action_on_empty_result=True,
    )
    for line in lines:
        _say(gather, speech, line)
    return str(response)


def say_then_hold(speech: Speech, lines: Sequence[Spoken], hold_url: str) -> str:
    """Speak without listening, then come back for what the agent does next."""
    response = VoiceResponse()
    for line in lines:
        _say(response, speech, line)
    response.redirect(hold_url, method="POST")
    return str(response)


def hold(hold_url: str, speech: Speech, pause_seconds: int = 1, lines: Sequence[Spoken] = ()) -> str:
    """A short silence that listens, then ask again: the agent is still thinking. A speech
    Gather around the pause posts words said meanwhile to the hold URL; when nothing is said,
    the Redirect asks the same URL without them. `lines` (a short acknowledgement) are said
    before the pause, outside the Gather."""
    response = VoiceResponse()
    for line in lines:
        _say(response, speech, line)
    gather = response.gather(
        input="speech", action=hold_url, method="POST", timeout=pause_seconds,
        speech_timeout=speech.speech_timeout, speech_model=speech.speech_model,
        language=speech.recognition_language, hints=", ".join(speech.hints) if speech.hints else None,
    )
    gather.pause(length=pause_seconds)
    response.redirect(hold_url, method="POST")
    return str(response)


def press(digits: str, hold_url: str) -> str:
    """Send DTMF tones into the call (a phone menu), then come back for the next action."""
    response = VoiceResponse()
    response.play(digits=digits)
    response.redirect(hold_url, method="POST")
    return str(response)


def listening_language(speech: Speech, lines: Sequence[Spoken]) -> str:
    """The language the answer is recognised in: the asking line's own, else the call's."""
    languages = [line.language for line in lines if isinstance(line, Line) and line.language]
    return languages[-1] if languages else speech.recognition_language


def _say(parent: VoiceResponse | Gather, speech: Speech, line: Spoken) -> None:
    if isinstance(line, Line) and line.audio_url:
        parent.play(line.audio_url)
    elif isinstance(line, Line) and line.language:  # Polly/Google voices fix their language (None)
        parent.say(line.text, voice=speech.voice, language=voices.say_language(speech.voice, line.language))
    elif isinstance(line, Line):
        parent.say(line.text, voice=speech.voice, language=speech.language)
    else:
        parent.say(line, voice=speech.voice, language=speech.language)
