"""Meeting invitations as iCalendar files (RFC 5545) that a phone adds to its calendar."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PRODID = "-//Barrio Conecta//ES"
MAX_LINE_OCTETS = 75
MAX_FILENAME_STEM = 60

# TEXT values may not hold control characters other than HTAB (RFC 5545 §3.3.11).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def escape_text(value: str) -> str:
    """A TEXT property value: backslash, semicolon and comma escaped, line breaks as \\n."""
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROL.sub("", value)
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\n", "\\n")


def fold_line(line: str) -> bytes:
    """One content line in UTF-8, folded so no physical line passes 75 octets, CRLF-ended."""
    folded = bytearray()
    width = 0
    for char in line:
        # Folding per character, never per byte, keeps every physical line valid UTF-8.
        encoded = char.encode()
        if width + len(encoded) > MAX_LINE_OCTETS:
            folded += b"\r\n "
            width = 1
        folded += encoded
        width += len(encoded)
    return bytes(folded) + b"\r\n"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


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
) -> bytes:
    """A VCALENDAR with one VEVENT; send it again with a higher `sequence` to update or cancel."""
    if starts_at.utcoffset() is None or now.utcoffset() is None:
        raise ValueError("starts_at and now must be timezone-aware")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if sequence < 0:
        raise ValueError("sequence must not be negative")
    if not uid.strip():
        raise ValueError("uid must not be empty")
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {zone_name!r}") from error
    start = starts_at.astimezone(UTC)
    # In UTC, so that a meeting across a DST change still lasts exactly `duration`.
    end = start + duration
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if cancelled else 'PUBLISH'}",
        # Times are absolute (UTC); this only hints the zone to show them in.
        f"X-WR-TIMEZONE:{zone_name}",
        "BEGIN:VEVENT",
        f"UID:{escape_text(uid)}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(end)}",
        f"SEQUENCE:{sequence}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        f"SUMMARY:{escape_text(title)}",
        f"LOCATION:{escape_text(place)}",
        f"DESCRIPTION:{escape_text(description)}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return b"".join(fold_line(line) for line in lines)


def ics_filename(title: str) -> str:
    """A safe ASCII file name for the invitation, e.g. "reunion-barrio-estacion.ics"."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_title).strip("-")[:MAX_FILENAME_STEM].rstrip("-")
    return f"{stem or 'reunion'}.ics"
