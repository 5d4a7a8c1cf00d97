import os

from soak import soak

CALLS = int(os.environ.get("TWILIO_CALLER_SOAK_CALLS", "20"))  # full size: 200


def test_soak_loses_and_duplicates_no_turn(live_server) -> None:
    results = soak(live_server, calls=CALLS, turns=5)
    assert len({r["call_id"] for r in results}) == CALLS
