from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twilio_caller.clock import ManualClock
from twilio_caller.errors import ConflictError, InvalidInputError, NotFoundError
from twilio_caller.manifest import invoke
from twilio_caller.runtime import Runtime


def tool(runtime: Runtime, tool_name: str, /, **arguments: Any) -> Any:
    return invoke(tool_name, arguments, runtime)


def names(runtime: Runtime) -> list[str]:
    return [c["name"] for c in tool(runtime, "list_contacts")["contacts"]]


@pytest.mark.parametrize(
    "written",
    ["312-555-0123", "(312) 555-0123", "3125550123", "+1 312 555 0123", "+13125550123",
     "312.555.0123", "1-312-555-0123"],
)
def test_common_forms_become_e164(runtime: Runtime, written: str) -> None:
    contact = tool(runtime, "add_contact", name="Contact7", number=written)
    assert contact["number"] == "+13125550123"
    assert contact["name"] == "Contact7"


def test_a_contact_keeps_its_details(runtime: Runtime, clock: ManualClock) -> None:
    contact = tool(runtime, "add_contact", name="  Contact1 ", number="312-555-0101",
                   timezone="America/New_York", voice="Polly.Joanna", notes="sister")
    assert contact == {
        "name": "Contact1", "number": "+13125550101", "timezone": "America/New_York",
        "voice": "Polly.Joanna", "notes": "sister", "opted_out_at": None,
        "created_at": "2026-11-24T15:00:00+00:00", "updated_at": "2026-11-24T15:00:00+00:00",
    }
    assert tool(runtime, "list_contacts") == {"contacts": [contact]}


def test_the_region_from_config_reads_national_numbers(runtime: Runtime, write_config) -> None:
    write_config("phone_region: GB\n")
    assert tool(runtime, "add_contact", name="Londoner", number="020 7946 0958")["number"] == "+442079460958"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("555-123-4567", "not a valid phone number"),
        ("555-123-XXXX", "not a phone number"),
        ("611", "short code"),
        ("22395", "short code"),
        ("911", "emergency number"),
        ("112", "emergency number"),
        ("call me", "not a phone number"),
        ("312-555-01234567", "wrong length"),
    ],
)
def test_numbers_that_cannot_be_contacts_are_refused(runtime: Runtime, number: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        tool(runtime, "add_contact", name="Someone", number=number)
    assert caught.value.field == "number"
    assert names(runtime) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "must not be empty"), ("12345", "needs at least one letter"),
     ("Bad\x07Name", "control characters")],
)
def test_bad_names_are_refused(runtime: Runtime, name: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        tool(runtime, "add_contact", name=name, number="312-555-0123")
    assert names(runtime) == []


def test_names_are_unique_regardless_of_case_and_numbers_regardless_of_form(runtime: Runtime) -> None:
    tool(runtime, "add_contact", name="Contact1", number="312-555-0101")
    with pytest.raises(ConflictError, match="name 'contact1' is already taken by contact 'Contact1'"):
        tool(runtime, "add_contact", name="contact1", number="312-555-0102")
    with pytest.raises(ConflictError, match=r"number '\+13125550101' is already taken"):
        tool(runtime, "add_contact", name="Contact2", number="(312) 555-0101")
    assert names(runtime) == ["Contact1"]


def test_bad_timezone_and_voice_are_refused_with_suggestions(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError, match="did you mean America/Chicago"):
        tool(runtime, "add_contact", name="A", number="312-555-0101", timezone="America/Chicgo")
    with pytest.raises(InvalidInputError, match="not a Twilio voice name"):
        tool(runtime, "add_contact", name="A", number="312-555-0101", voice="Brian please")
    assert names(runtime) == []


def test_update_changes_only_what_is_given(runtime: Runtime, clock: ManualClock) -> None:
    tool(runtime, "add_contact", name="Contact1", number="312-555-0101", notes="keep me")
    clock.advance(60)
    updated = tool(runtime, "update_contact", name="contact1", timezone="America/Denver")
    assert updated["timezone"] == "America/Denver"
    assert updated["notes"] == "keep me"
    assert updated["updated_at"] == "2026-11-24T15:01:00+00:00"
    assert updated["created_at"] == "2026-11-24T15:00:00+00:00"
    cleared = tool(runtime, "update_contact", name="Contact1", notes="", number="312-555-0109")
    assert cleared["notes"] is None
    assert cleared["number"] == "+13125550109"
    assert cleared["timezone"] == "America/Denver"


def test_rename_keeps_names_unique(runtime: Runtime) -> None:
    tool(runtime, "add_contact", name="Contact1", number="312-555-0101")
    tool(runtime, "add_contact", name="Contact2", number="312-555-0102")
    with pytest.raises(ConflictError):
        tool(runtime, "update_contact", name="Contact1", new_name="CONTACT2")
    renamed = tool(runtime, "update_contact", name="Contact1", new_name="contact1 (work)")
    assert renamed["name"] == "contact1 (work)"
    assert tool(runtime, "update_contact", name="Contact2", new_name="contact2")["name"] == "contact2"
    assert names(runtime) == ["contact1 (work)", "contact2"]


def test_a_failed_update_changes_nothing(runtime: Runtime) -> None:
    before = tool(runtime, "add_contact", name="Contact1", number="312-555-0101")
    with pytest.raises(InvalidInputError):
        tool(runtime, "update_contact", name="Contact1", number="555-123-4567", notes="new")
    assert tool(runtime, "list_contacts")["contacts"] == [before]


def test_unknown_contacts_name_the_closest(runtime: Runtime) -> None:
    with pytest.raises(NotFoundError, match="no contacts yet"):
        tool(runtime, "remove_contact", name="Contact1")
    tool(runtime, "add_contact", name="Contact1", number="312-555-0101")
    tool(runtime, "add_contact", name="Bob", number="312-555-0102")
    with pytest.raises(NotFoundError, match="did you mean 'Contact1'"):
        tool(runtime, "update_contact", name="Contact11", notes="x")


def test_remove_returns_what_was_removed(runtime: Runtime) -> None:
    added = tool(runtime, "add_contact", name="Contact1", number="312-555-0101")
    assert tool(runtime, "remove_contact", name="CONTACT1") == {"removed": added}
    assert names(runtime) == []


def write_csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "contacts.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_adds_every_row(runtime: Runtime, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "\ufeffName,Number,Timezone,Voice,Notes\n"
                               "Contact1,312-555-0101,America/Chicago,Polly.Joanna,sister\n"
                               "\n"
                               '"Contact, Two",(312) 555-0102,,,\n')
    imported = tool(runtime, "import_contacts", path=path)["imported"]
    assert [(c["name"], c["number"], c["timezone"]) for c in imported] == [
        ("Contact1", "+13125550101", "America/Chicago"), ("Contact, Two", "+13125550102", None)]
    assert names(runtime) == ["Contact, Two", "Contact1"]


def test_import_is_all_or_nothing(runtime: Runtime, tmp_path: Path) -> None:
    tool(runtime, "add_contact", name="Existing", number="312-555-0199")
    path = write_csv(tmp_path, "name,number\nContact1,312-555-0101\nContact2,555-123-4567\n"
                               "contact1,312-555-0103\nContact4,312-555-0104,extra\n")
    with pytest.raises(InvalidInputError) as caught:
        tool(runtime, "import_contacts", path=path)
    message = caught.value.message
    assert "nothing imported" in message
    assert "line 3: '555-123-4567' is not a valid phone number" in message
    assert "line 4: the name 'contact1' appears earlier in the file" in message
    assert "line 5: more values than the header has columns" in message
    clash = write_csv(tmp_path, "name,number\nContact1,312-555-0101\nContact2,312-555-0199\n")
    with pytest.raises(ConflictError, match="nothing imported"):
        tool(runtime, "import_contacts", path=clash)
    assert names(runtime) == ["Existing"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "is empty"), ("name,phone\nA,312-555-0101\n", "missing column(s) number; unknown column(s) 'phone'"),
     ("name,number\n", "no contacts")],
)
def test_import_explains_a_bad_file(runtime: Runtime, tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        tool(runtime, "import_contacts", path=write_csv(tmp_path, text))
    assert message in caught.value.message


def test_import_of_a_missing_file(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file"):
        tool(runtime, "import_contacts", path=str(tmp_path / "nope.csv"))


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.one_of(st.text(max_size=40), st.from_regex(r"\+?[0-9 ()\-.]{1,20}", fullmatch=True)))
def test_any_number_is_either_stored_in_e164_or_refused_cleanly(runtime: Runtime, number: str) -> None:
    before = tool(runtime, "list_contacts")
    try:
        contact = tool(runtime, "add_contact", name="Prop", number=number)
    except (InvalidInputError, ConflictError):
        assert tool(runtime, "list_contacts") == before
        return
    assert contact["number"].startswith("+")
    tool(runtime, "remove_contact", name="Prop")
