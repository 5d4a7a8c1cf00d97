"""Reading the Calls list: Twilio's filters and its paging (PageSize, Page, PageToken)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import urlencode

from twilio_caller.simulator.errors import CALLS_RESOURCE, ApiError
from twilio_caller.simulator.records import CallRecord

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
FILTER_KEYS = ("To", "From", "ParentCallSid", "Status", "StartTime", "StartTime<", "StartTime>",
               "EndTime", "EndTime<", "EndTime>")
Predicate = Callable[[CallRecord], bool]


@dataclass(frozen=True)
class Moment:
    """A filter value: a UTC day (`2009-07-06`) or an instant (`2009-07-06T10:00:00Z`, as
    the SDK sends dates). `<` and `>` compare instants; `=` selects the whole UTC day."""

    value: datetime

    @classmethod
    def parse(cls, name: str, raw: str) -> Moment:
        try:
            if len(raw) == 10:
                day = date.fromisoformat(raw)
                return cls(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, CALLS_RESOURCE, f"{name} is not a date: {raw!r}") from None
        return cls(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def _time_filter(name: str, raw: str, read: Callable[[CallRecord], datetime | None]) -> Predicate:
    moment = Moment.parse(name, raw)

    def on(record: CallRecord) -> bool:
        value = read(record)
        if value is None:
            return False
        value = value.astimezone(timezone.utc)
        if name.endswith("<"):
            return value < moment.value
        if name.endswith(">"):
            return value >= moment.value
        return value.date() == moment.value.date()  # StartTime=/EndTime= select a whole UTC day

    return on


def build_filters(query: Mapping[str, str]) -> list[Predicate]:
    filters: list[Predicate] = []
    for name in FILTER_KEYS:
        raw = query.get(name)
        if raw is None or raw == "":
            continue
        filters.append(_filter(name, raw))
    return filters


def _filter(name: str, raw: str) -> Predicate:
    if name == "To":
        return lambda record: record.to == raw
    if name == "From":
        return lambda record: record.from_ == raw
    if name == "Status":
        return lambda record: record.status == raw
    if name == "ParentCallSid":
        return lambda record: False  # outbound-api calls have no parent
    if name.startswith("StartTime"):
        return _time_filter(name, raw, lambda record: record.start_time)
    return _time_filter(name, raw, lambda record: record.end_time)


@dataclass(frozen=True)
class PageRequest:
    size: int
    number: int
    token: str | None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> PageRequest:
        size = _integer(query, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        number = _integer(query, "Page", 0, 0, 10**9)
        return cls(size, number, query.get("PageToken") or None)


def _integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, CALLS_RESOURCE, f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _start_index(records: Sequence[CallRecord], request: PageRequest) -> int:
    if request.token is None:
        return request.number * request.size
    direction, sid = request.token[:2], request.token[2:]
    position = next((index for index, record in enumerate(records) if record.sid == sid), None)
    if direction not in ("PA", "PB") or position is None:
        raise ApiError(400, CALLS_RESOURCE, f"Invalid PageToken: {request.token!r}")
    return position + 1 if direction == "PA" else max(position - request.size, 0)


def page(records: Sequence[CallRecord], query: Mapping[str, str], path: str) -> dict[str, Any]:
    """One page of `records` (already filtered, newest first) in Twilio's list shape."""
    request = PageRequest.parse(query)
    start = _start_index(records, request)
    items = list(records[start : start + request.size])
    filters = [(name, query[name]) for name in FILTER_KEYS if query.get(name)]

    def link(number: int, token: str | None = None) -> str:
        params = [*filters, ("PageSize", str(request.size)), ("Page", str(number))]
        if token is not None:
            params.append(("PageToken", token))
        return f"{path}?{urlencode(params)}"

    has_next = start + request.size < len(records) and items
    has_previous = start > 0 and request.number > 0
    return {
        "calls": [record.to_json() for record in items],
        "end": start + len(items) - 1 if items else 0,
        "first_page_uri": link(0),
        "next_page_uri": link(request.number + 1, "PA" + items[-1].sid) if has_next else None,
        "page": request.number,
        "page_size": request.size,
        "previous_page_uri": link(request.number - 1, "PB" + items[0].sid) if has_previous and items else None,
        "start": start,
        "uri": link(request.number, request.token),
    }
