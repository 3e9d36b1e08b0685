"""Meeting invitations as iCalendar files (RFC 5545) that a phone adds to its calendar.

A one-off meeting is one VEVENT, written in UTC, exact whatever the phone's zone. A series
(`rrule`) is its VEVENT with the rule and the cancelled dates (EXDATE), followed by one VEVENT
per date moved on its own (`overrides`): the same UID, the RECURRENCE-ID of the date the rule
gave, and its new time. A single changed occurrence (`recurrence_id`) is that one VEVENT
alone. The rule, EXDATE and RECURRENCE-ID are in the barrio's local time with its TZID and
VTIMEZONE: a rule repeats in wall time ("los jueves a las 19:00" stays at 19:00 across a DST
change), and phones match EXDATE and RECURRENCE-ID to occurrences by it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, vRecur, vText

from handlers.recurrence import Rule, instant, occurrences

PRODID = "-//Barrio Conecta//ES"
MAX_FILENAME_STEM = 60
# How far ahead the VTIMEZONE of a series describes the zone's offsets; phones that know the
# TZID use their own rules anyway.
TIMEZONE_YEARS = 10

# A VEVENT's time properties (name, value), in the order they are written.
_Times = list[tuple[str, object]]

# TEXT values may not hold control characters other than HTAB (RFC 5545 §3.3.11).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def escape_text(value: str) -> str:
    """A TEXT property value: backslash, semicolon and comma escaped, line breaks as \\n."""
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROL.sub("", value)
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\n", "\\n")


class _Text(vText):
    """icalendar's TEXT, escaped by `escape_text`.

    icalendar reads a literal backslash-N typed by a person as a line break, and keeps control
    characters; `escape_text` keeps the text as typed and drops what RFC 5545 forbids."""

    def to_ical(self) -> bytes:
        return escape_text(self).encode()


class Override(NamedTuple):
    """One occurrence of a series moved on its own, written beside the series' VEVENT."""

    occurrence: datetime
    """The occurrence as the rule names it: `Occurrence.local`, or its aware instant."""
    starts_at: datetime
    """Its new start: naive wall time or aware instant."""
    sequence: int
    """That occurrence's own SEQUENCE."""


def meeting_ics(
    uid: str,
    title: str,
    starts_at: datetime,
    duration: timedelta,
    place: str,
    description: str,
    zone_name: str = "America/Santiago",
    sequence: int = 0,
    cancelled: bool = False,
    *,
    now: datetime,
    rrule: str | None = None,
    exdates: Sequence[datetime] = (),
    recurrence_id: datetime | None = None,
    overrides: Sequence[Override] = (),
) -> bytes:
    """A VCALENDAR of one meeting; send it again with a higher `sequence` to update or cancel.

    - One-off meeting: `starts_at` is an aware instant; one VEVENT.
    - Series: `rrule` is a `Rule.rrule` and `starts_at` the first meeting, as its naive wall
      time (`Rule.start`) or its aware instant; `exdates` are cancelled occurrences, each its
      aware instant (`Occurrence.at`) or naive wall time (`Occurrence.local`), and must be
      occurrences of the series. A VEVENT with the rule and EXDATE, then one per `overrides`:
      an occurrence of the series (named like an exdate, neither cancelled nor named twice)
      moved to its new start, with its own sequence and the series' `uid`. A cancelled
      series (`cancelled`) carries no overrides: cancelling it cancels every date.
    - One occurrence of a series, moved or (with `cancelled`) cancelled: `recurrence_id` is the
      occurrence as the rule names it (`Occurrence.local`, or its aware instant), `starts_at`
      its new start (naive wall time or aware instant); `uid` is the series'. One VEVENT.
    Aware instants that do not name one wall time (right after a DST jump) are refused.
    """
    if now.utcoffset() is None:
        raise ValueError("starts_at and now must be timezone-aware")
    series = rrule is not None or recurrence_id is not None
    if not series and starts_at.utcoffset() is None:
        raise ValueError("starts_at and now must be timezone-aware")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if sequence < 0 or any(override.sequence < 0 for override in overrides):
        raise ValueError("sequence must not be negative")
    if not uid.strip():
        raise ValueError("uid must not be empty")
    if rrule is not None and recurrence_id is not None:
        raise ValueError("rrule and recurrence_id exclude each other: a series or one date")
    if exdates and rrule is None:
        raise ValueError("exdates need an rrule")
    if overrides and rrule is None:
        raise ValueError("overrides need an rrule")
    if overrides and cancelled:
        raise ValueError("overrides and cancelled exclude each other: a cancelled series has none")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {zone_name!r}") from error

    calendar = Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", PRODID)
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "CANCEL" if cancelled else "PUBLISH")
    # Only a hint of the zone to show times in: every time below is UTC or carries its TZID.
    calendar.add("X-WR-TIMEZONE", zone_name)

    def event(times: _Times, sequence: int) -> Event:
        vevent = Event()
        vevent.add("UID", _Text(uid))
        vevent.add("DTSTAMP", now.astimezone(UTC).replace(microsecond=0))
        for name, value in times:
            vevent.add(name, value)
        vevent.add("SEQUENCE", sequence)
        vevent.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
        vevent.add("SUMMARY", _Text(title))
        vevent.add("LOCATION", _Text(place))
        vevent.add("DESCRIPTION", _Text(description))
        return vevent

    events: list[Event] = []
    if rrule is not None:
        start = _wall_time(starts_at, zone)
        rule = Rule(rrule, start)
        times: _Times = [
            ("DTSTART", start.replace(tzinfo=zone)),
            # DURATION, exact for every occurrence; a DTEND would fix the length as that of the
            # first meeting, wrong by an hour for the whole series if that one crosses a DST
            # change.
            ("DURATION", duration),
            ("RRULE", vRecur.from_ical(rrule)),
        ]
        cancelled_walls = sorted({_occurrence_wall(rule, zone, moment) for moment in exdates})
        if cancelled_walls:
            times.append(("EXDATE", [wall.replace(tzinfo=zone) for wall in cancelled_walls]))
        events.append(event(times, sequence))
        moved: dict[datetime, Event] = {}
        for override in overrides:
            original = _occurrence_wall(rule, zone, override.occurrence)
            if original in cancelled_walls or original in moved:
                raise ValueError(f"override {override.occurrence} is cancelled or named twice")
            moved[original] = event(
                _occurrence_times(override.starts_at, duration, zone, original), override.sequence
            )
        events.extend(moved[original] for original in sorted(moved))
    else:
        events.append(event(_occurrence_times(starts_at, duration, zone, recurrence_id), sequence))
    if series:
        # From the year of the earliest date any VEVENT names.
        first_year = min(
            value.astimezone(zone).year
            for vevent in events
            for name in ("DTSTART", "RECURRENCE-ID")
            if isinstance(value := vevent.decoded(name, None), datetime)
        )
        calendar.add_component(
            Timezone.from_tzinfo(
                zone,
                tzid=zone_name,
                first_date=date(first_year, 1, 1),
                last_date=date(first_year + TIMEZONE_YEARS, 1, 1),
            )
        )
    for vevent in events:
        calendar.add_component(vevent)
    content: bytes = calendar.to_ical()
    return content


def _occurrence_times(
    starts_at: datetime, duration: timedelta, zone: ZoneInfo, recurrence_id: datetime | None
) -> _Times:
    """DTSTART and DTEND of one meeting, and the RECURRENCE-ID of the occurrence it is."""
    # In UTC, so that a meeting across a DST change still lasts exactly `duration`.
    begin = _utc(starts_at, zone)
    times: _Times = [("DTSTART", begin), ("DTEND", begin + duration)]
    if recurrence_id is not None:
        original = _wall_time(recurrence_id, zone)
        times.append(("RECURRENCE-ID", original.replace(tzinfo=zone)))
    return times


def _utc(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        return instant(moment, zone)
    return moment.astimezone(UTC)


def _wall_time(moment: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall time in `zone` that names `moment` by `handlers.recurrence`'s DST rules."""
    if moment.tzinfo is None:
        return moment
    wall = moment.astimezone(zone).replace(tzinfo=None, fold=0)
    if instant(wall, zone) != moment:
        raise ValueError(f"{moment} is the second pass of a repeated wall time in {zone}")
    # Every wall time skipped by a jump forward lands on its first valid minute, so that
    # instant alone does not say which wall time the rule named.
    if instant(wall - timedelta(minutes=1), zone) == moment:
        raise ValueError(f"{moment} follows a DST jump in {zone}: pass the naive wall time")
    return wall


def _occurrence_wall(rule: Rule, zone: ZoneInfo, moment: datetime) -> datetime:
    """The wall time the rule gives the occurrence `moment` names (instant or wall time)."""
    at = _utc(moment, zone)
    nearby = occurrences(rule, zone, after=at - timedelta(minutes=1), until=at)
    for occurrence in nearby:
        if (occurrence.at == at) if moment.tzinfo is not None else (occurrence.local == moment):
            return occurrence.local
    raise ValueError(f"{moment} is not an occurrence of {rule.rrule}")


def ics_filename(title: str) -> str:
    """A safe ASCII file name for the invitation, e.g. "reunion-barrio-estacion.ics"."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_title).strip("-")[:MAX_FILENAME_STEM].rstrip("-")
    return f"{stem or 'reunion'}.ics"
