"""An offline Twilio: the REST Calls API and the voice engine, with scripted callees.

    simulator = Simulator(time_scale=1000, callees={"+13125550101": CalleeScript(...)})
    with SimulatorThread(simulator) as running:          # or: async with SimulatorServer(...)
        client = Client(simulator.account_sid, simulator.auth_token, environment={...})
        client.api.base_url = running.base_url
"""

from twilio_caller.simulator.callee import (
    CalleeBook,
    CalleeProfile,
    CalleeScript,
    Digits,
    FriendlyCallee,
    HangUp,
    InteractiveCallee,
    Reply,
    Silence,
    Speech,
    callee_book_from_dict,
    load_callee_book,
)
from twilio_caller.simulator.chaos import Chaos
from twilio_caller.simulator.core import Simulator
from twilio_caller.simulator.errors import ApiError, CalleeScriptError, CallFailure, ServeError, SimulatorError
from twilio_caller.simulator.records import CallError, CallRecord, Utterance, WebhookRequest
from twilio_caller.simulator.runner import Server, SimulatorServer, SimulatorThread, ThreadedServer

__all__ = [
    "ApiError",
    "CallError",
    "CallFailure",
    "CallRecord",
    "CalleeBook",
    "CalleeProfile",
    "CalleeScript",
    "CalleeScriptError",
    "Chaos",
    "Digits",
    "FriendlyCallee",
    "HangUp",
    "InteractiveCallee",
    "Reply",
    "ServeError",
    "Server",
    "Silence",
    "Simulator",
    "SimulatorError",
    "SimulatorServer",
    "SimulatorThread",
    "Speech",
    "ThreadedServer",
    "Utterance",
    "WebhookRequest",
    "callee_book_from_dict",
    "load_callee_book",
]
