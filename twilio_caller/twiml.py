"""TwiML documents, built only with the SDK's VoiceResponse (it escapes text and attributes;
callee speech is never spliced into markup by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twilio.twiml.voice_response import Gather, VoiceResponse


@dataclass(frozen=True)
class Line:
    """A line the assistant says: `text` for the transcript, and pre-generated audio to
    <Play> in its place when there is some (else it is <Say>ed)."""

    text: str
    audio_url: str | None = None


Spoken = str | Line


@dataclass(frozen=True)
class Speech:
    """How the assistant sounds and how it listens."""

    voice: str
    language: str | None  # of <Say>; None when the voice itself fixes it (Polly.*, Google.*)
    recognition_language: str
    speech_timeout: str
    timeout: int
    speech_model: str
    hints: Sequence[str]


def notify(speech: Speech, lines: Sequence[Spoken]) -> str:
    """Say every line, then hang up."""
    response = VoiceResponse()
    for line in lines:
        _say(response, speech, line)
    response.hangup()
    return str(response)


def ask(speech: Speech, lines: Sequence[Spoken], action: str) -> str:
    """Say the lines inside a speech Gather; the result (or its absence) is posted to
    `action` — actionOnEmptyResult makes silence a post too, so the server decides."""
    response = VoiceResponse()
    gather = response.gather(
        input="speech",
        action=action,
        method="POST",
        timeout=speech.timeout,
        speech_timeout=speech.speech_timeout,
        speech_model=speech.speech_model,
        language=speech.recognition_language,
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


def hold(hold_url: str, pause_seconds: int = 1) -> str:
    """A short silence, then ask again: the agent is still thinking."""
    response = VoiceResponse()
    response.pause(length=pause_seconds)
    response.redirect(hold_url, method="POST")
    return str(response)


def press(digits: str, hold_url: str) -> str:
    """Send DTMF tones into the call (a phone menu), then come back for the next action."""
    response = VoiceResponse()
    response.play(digits=digits)
    response.redirect(hold_url, method="POST")
    return str(response)


def _say(parent: VoiceResponse | Gather, speech: Speech, line: Spoken) -> None:
    if isinstance(line, Line) and line.audio_url:
        parent.play(line.audio_url)
    else:
        parent.say(line.text if isinstance(line, Line) else line, voice=speech.voice,
                   language=speech.language)
