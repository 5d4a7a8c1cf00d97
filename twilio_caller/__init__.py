"""twilio-caller: an agent skill that places real phone calls through Twilio."""

__version__ = "0.1.0"
