"""The call as the callee hears it: figures derived from what was played and said on the
line, in simulated seconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twilio_caller.simulator.records import Utterance

AUDIBLE_KINDS = frozenset({"say", "play", "beep"})


@dataclass(frozen=True)
class CalleeExperience:
    pickup_to_first_audio: float | None  # answer to the first <Say>/<Play> the callee hears
    dead_air: tuple[float, ...]  # per turn: callee's end of speech to the next audio heard
    lost_words: int  # words the callee said while nothing was listening
    lost_utterances: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "pickup_to_first_audio": self.pickup_to_first_audio,
            "dead_air": list(self.dead_air),
            "lost_words": self.lost_words,
            "lost_utterances": list(self.lost_utterances),
        }


def callee_experience(
    answered_at: datetime | None, heard: Sequence[Utterance], said: Sequence[Utterance]
) -> CalleeExperience:
    audible = [item.at for item in heard if item.kind in AUDIBLE_KINDS]
    lost = tuple(item.text for item in said if not item.listened and item.kind == "speech")
    return CalleeExperience(
        pickup_to_first_audio=_first_audio(answered_at, audible),
        dead_air=tuple(_dead_air(said, audible)),
        lost_words=sum(len(text.split()) for text in lost),
        lost_utterances=lost,
    )


def _first_audio(answered_at: datetime | None, audible: list[datetime]) -> float | None:
    if answered_at is None or not audible:
        return None
    return _seconds(audible[0] - answered_at)


def _dead_air(said: Sequence[Utterance], audible: list[datetime]) -> list[float]:
    gaps = []
    for item in said:
        if not item.listened or item.ends is None:
            continue
        ends = item.ends
        following = [moment for moment in audible if moment >= ends]
        if following:
            gaps.append(_seconds(following[0] - ends))
    return gaps


def _seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)
