from __future__ import annotations

import pytest

from twilio_caller import call_request
from twilio_caller.errors import InvalidInputError, NotFoundError
from twilio_caller.numbers import Kind
from twilio_caller.runtime import Runtime


def parse(rt: Runtime, **arguments) -> call_request.CallRequest:
    return call_request.from_arguments(rt.contacts, rt.settings, {"message": "Hello", **arguments})


@pytest.mark.parametrize("to", ["312-555-0123", "(312) 555-0123", "+1 312 555 0123", "3125550123"])
def test_numbers_in_any_common_form(runtime: Runtime, to: str) -> None:
    runtime.contacts.add("Contact7", "+13125550123", voice="Polly.Joanna")
    request = parse(runtime, to=to)
    assert request.to_number == "+13125550123"
    assert request.to_name == "Contact7"  # a number that is a contact's resolves to the contact
    assert request.voice == "Polly.Joanna"  # the contact's default voice


def test_contact_names_ignore_case_and_unknown_ones_suggest(runtime: Runtime) -> None:
    runtime.contacts.add("Contact1", "312-555-0101")
    assert parse(runtime, to="CONTACT1").to_number == "+13125550101"
    with pytest.raises(NotFoundError, match="did you mean 'Contact1'"):
        parse(runtime, to="Contact")


def test_emergency_and_short_numbers_reach_safety(runtime: Runtime) -> None:
    assert parse(runtime, to="911").number.kind is Kind.EMERGENCY
    assert parse(runtime, to="22395").number.kind is Kind.SHORT


def test_defaults_and_overrides(runtime: Runtime) -> None:
    runtime.contacts.add("Contact1", "312-555-0101")
    request = parse(runtime, to="Contact1", keep_open=True)
    assert (request.voice, request.language, request.interactive) == ("Polly.Brian", "en-GB", True)
    request = parse(runtime, to="Contact1", voice="Polly.Matthew", language="en-US", closing="Bye!")
    assert (request.voice, request.language, request.closing) == ("Polly.Matthew", "en-US", "Bye!")


@pytest.mark.parametrize(
    ("arguments", "field"),
    [({"to": "Contact1", "message": "  \n "}, "message"),
     ({"to": "Contact1", "message": "x" * 1201}, "message"),
     ({"to": "  ", "message": "hi"}, "to"),
     ({"to": "555-123-4567", "message": "hi"}, "number"),
     ({"to": "Contact1", "message": "hi", "voice": "Brian!"}, "voice")],
)
def test_bad_arguments_name_the_field(runtime: Runtime, arguments: dict, field: str) -> None:
    runtime.contacts.add("Contact1", "312-555-0101")
    with pytest.raises(InvalidInputError) as caught:
        call_request.from_arguments(runtime.contacts, runtime.settings, arguments)
    assert caught.value.field == field
