"""The one vocabulary of a call's status, shared by the store, the safety ledger, the
conversation and every transport. Values are Twilio's own words (the first transport), plus
`pending`: a call we recorded but have not yet handed to the provider."""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"

    @property
    def live(self) -> bool:
        return self in LIVE

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def rank(self) -> int:
        """Progress order: a status never moves a call backwards (every final status ranks last)."""
        return _RANK.get(self, len(_RANK))


LIVE: frozenset[CallStatus] = frozenset({
    CallStatus.PENDING, CallStatus.QUEUED, CallStatus.INITIATED, CallStatus.RINGING,
    CallStatus.IN_PROGRESS,
})
TERMINAL: frozenset[CallStatus] = frozenset(set(CallStatus) - LIVE)
UNANSWERED: frozenset[CallStatus] = frozenset(LIVE - {CallStatus.IN_PROGRESS})
"""Live, but nobody has picked up yet (ending it cancels it rather than hanging up)."""
PROVIDER: frozenset[CallStatus] = frozenset(set(CallStatus) - {CallStatus.PENDING})
"""What a provider may report (pending is ours alone)."""

_RANK = {status: index for index, status in enumerate(
    (CallStatus.PENDING, CallStatus.QUEUED, CallStatus.INITIATED, CallStatus.RINGING,
     CallStatus.IN_PROGRESS))}


def status_rank(status: str) -> int:
    """The rank of a status word; an unknown word ranks with pending."""
    try:
        return CallStatus(status).rank
    except ValueError:
        return 0
