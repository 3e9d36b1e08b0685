"""Meeting invitations as iCalendar files (RFC 5545) that a phone adds to its calendar.

A one-off meeting is written in UTC, exact whatever the phone's zone. A series (`rrule`) and
a single changed occurrence of one (`recurrence_id`) are written in the barrio's local time
with its TZID and VTIMEZONE: a rule repeats in wall time ("los jueves a las 19:00" stays at
19:00 across a DST change), and phones match EXDATE and RECURRENCE-ID to occurrences by it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, vRecur, vText

from handlers.recurrence import Rule, instant, occurrences

PRODID = "-//Barrio Conecta//ES"
MAX_FILENAME_STEM = 60
# How far ahead the VTIMEZONE of a series describes the zone's offsets; phones that know the
# TZID use their own rules anyway.
TIMEZONE_YEARS = 10

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
) -> bytes:
    """A VCALENDAR with one VEVENT; send it again with a higher `sequence` to update or cancel.

    - One-off meeting: `starts_at` is an aware instant.
    - Series: `rrule` is a `Rule.rrule` and `starts_at` the first meeting, as its naive wall
      time (`Rule.start`) or its aware instant; `exdates` are cancelled occurrences, each its
      aware instant (`Occurrence.at`) or naive wall time (`Occurrence.local`), and must be
      occurrences of the series.
    - One occurrence of a series, moved or (with `cancelled`) cancelled: `recurrence_id` is the
      occurrence as the rule names it (`Occurrence.local`, or its aware instant), `starts_at`
      its new start (naive wall time or aware instant); `uid` is the series'.
    Aware instants that do not name one wall time (right after a DST jump) are refused.
    """
    if now.utcoffset() is None:
        raise ValueError("starts_at and now must be timezone-aware")
    series = rrule is not None or recurrence_id is not None
    if not series and starts_at.utcoffset() is None:
        raise ValueError("starts_at and now must be timezone-aware")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if sequence < 0:
        raise ValueError("sequence must not be negative")
    if not uid.strip():
        raise ValueError("uid must not be empty")
    if rrule is not None and recurrence_id is not None:
        raise ValueError("rrule and recurrence_id exclude each other: one file, one VEVENT")
    if exdates and rrule is None:
        raise ValueError("exdates need an rrule")
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
    event = Event()
    event.add("UID", _Text(uid))
    event.add("DTSTAMP", now.astimezone(UTC).replace(microsecond=0))
    if rrule is not None:
        start = _wall_time(starts_at, zone)
        rule = Rule(rrule, start)
        event.add("DTSTART", start.replace(tzinfo=zone))
        # DURATION, exact for every occurrence; a DTEND would fix the length as that of the
        # first meeting, wrong by an hour for the whole series if that one crosses a DST change.
        event.add("DURATION", duration)
        event.add("RRULE", vRecur.from_ical(rrule))
        if exdates:
            cancelled_walls = _occurrence_walls(rule, zone, exdates)
            event.add("EXDATE", [wall.replace(tzinfo=zone) for wall in cancelled_walls])
        first_year = start.year
    else:
        # In UTC, so that a meeting across a DST change still lasts exactly `duration`.
        begin = _utc(starts_at, zone)
        event.add("DTSTART", begin)
        event.add("DTEND", begin + duration)
        first_year = begin.astimezone(zone).year
        if recurrence_id is not None:
            original = _wall_time(recurrence_id, zone)
            event.add("RECURRENCE-ID", original.replace(tzinfo=zone))
            first_year = min(first_year, original.year)
    event.add("SEQUENCE", sequence)
    event.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("SUMMARY", _Text(title))
    event.add("LOCATION", _Text(place))
    event.add("DESCRIPTION", _Text(description))
    if series:
        calendar.add_component(
            Timezone.from_tzinfo(
                zone,
                tzid=zone_name,
                first_date=date(first_year, 1, 1),
                last_date=date(first_year + TIMEZONE_YEARS, 1, 1),
            )
        )
    calendar.add_component(event)
    content: bytes = calendar.to_ical()
    return content


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


def _occurrence_walls(rule: Rule, zone: ZoneInfo, moments: Sequence[datetime]) -> list[datetime]:
    walls: set[datetime] = set()
    for moment in moments:
        at = _utc(moment, zone)
        nearby = occurrences(rule, zone, after=at - timedelta(minutes=1), until=at)
        matches = [
            occurrence.local
            for occurrence in nearby
            if (occurrence.at == at if moment.tzinfo is not None else occurrence.local == moment)
        ]
        if not matches:
            raise ValueError(f"exdate {moment} is not an occurrence of {rule.rrule}")
        walls.add(matches[0])
    return sorted(walls)


def ics_filename(title: str) -> str:
    """A safe ASCII file name for the invitation, e.g. "reunion-barrio-estacion.ics"."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_title).strip("-")[:MAX_FILENAME_STEM].rstrip("-")
    return f"{stem or 'reunion'}.ics"
