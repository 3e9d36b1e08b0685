"""Meeting invitations: RFC 5545 structure, TEXT escaping, CRLF and UTF-8-safe line folding."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.ics import escape_text, fold_line, ics_filename, meeting_ics

SANTIAGO = ZoneInfo("America/Santiago")
START = datetime(2026, 11, 26, 19, 0, tzinfo=SANTIAGO)  # 22:00 UTC
STAMP = datetime(2026, 11, 24, 18, 0, 0, 123456, tzinfo=UTC)


def unfold(data: bytes) -> list[str]:
    """Logical content lines, undoing RFC 5545 §3.1 folding."""
    return data.decode().replace("\r\n ", "").removesuffix("\r\n").split("\r\n")


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value)


def properties(data: bytes) -> dict[str, str]:
    return dict(line.split(":", 1) for line in unfold(data))


def physical_lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data.removesuffix(b"\r\n").split(b"\r\n")


def invitation(**changes: object) -> bytes:
    arguments: dict[str, object] = {
        "uid": "meeting-42@barrioconecta",
        "title": "Reunión barrio Estación",
        "starts_at": START,
        "duration": timedelta(hours=1, minutes=30),
        "place": "Sede vecinal, Av. Matta 123",
        "description": "Temas: seguridad; luminarias.\nTraer propuestas.",
        "now": STAMP,
    }
    arguments.update(changes)
    return meeting_ics(**arguments)  # type: ignore[arg-type]


def test_structure_and_values() -> None:
    data = invitation()
    lines = unfold(data)
    assert lines[:2] == ["BEGIN:VCALENDAR", "VERSION:2.0"]
    assert lines[-2:] == ["END:VEVENT", "END:VCALENDAR"]
    assert lines.count("BEGIN:VEVENT") == 1 and lines.count("END:VEVENT") == 1
    assert lines.index("BEGIN:VEVENT") < lines.index("UID:meeting-42@barrioconecta")
    props = properties(data)
    assert props["PRODID"] == "-//Barrio Conecta//ES"
    assert props["METHOD"] == "PUBLISH"
    assert props["STATUS"] == "CONFIRMED"
    assert props["UID"] == "meeting-42@barrioconecta"
    assert props["DTSTAMP"] == "20261124T180000Z"
    assert props["DTSTART"] == "20261126T220000Z"
    assert props["DTEND"] == "20261126T233000Z"
    assert props["SEQUENCE"] == "0"
    assert props["SUMMARY"] == "Reunión barrio Estación"
    assert props["LOCATION"] == "Sede vecinal\\, Av. Matta 123"
    assert props["DESCRIPTION"] == "Temas: seguridad\\; luminarias.\\nTraer propuestas."
    assert props["X-WR-TIMEZONE"] == "America/Santiago"


def test_cancellation_keeps_the_uid_and_raises_the_sequence() -> None:
    props = properties(invitation(cancelled=True, sequence=3))
    assert props["METHOD"] == "CANCEL"
    assert props["STATUS"] == "CANCELLED"
    assert props["SEQUENCE"] == "3"
    assert props["UID"] == "meeting-42@barrioconecta"


def test_times_are_utc_whatever_the_zone_of_starts_at() -> None:
    in_utc = properties(invitation(starts_at=START.astimezone(UTC)))
    in_tokyo = properties(invitation(starts_at=START.astimezone(ZoneInfo("Asia/Tokyo"))))
    assert in_utc["DTSTART"] == in_tokyo["DTSTART"] == "20261126T220000Z"
    assert in_utc["DTEND"] == in_tokyo["DTEND"] == "20261126T233000Z"


def test_duration_is_exact_across_spring_forward() -> None:
    # 23:30 on 2026-09-05 is UTC-4; two hours later Santiago is already on UTC-3.
    start = datetime(2026, 9, 5, 23, 30, tzinfo=SANTIAGO)
    props = properties(invitation(starts_at=start, duration=timedelta(hours=2)))
    assert props["DTSTART"] == "20260906T033000Z"
    assert props["DTEND"] == "20260906T053000Z"


def test_dtstamp_is_the_given_now() -> None:
    # The caller's clock, not the wall clock: a test means the same on any day.
    later = datetime(2031, 7, 15, 12, 30, tzinfo=UTC)
    assert properties(invitation(now=later))["DTSTAMP"] == "20310715T123000Z"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a,b", "a\\,b"),
        ("a;b", "a\\;b"),
        ("a\\b", "a\\\\b"),
        ("line 1\nline 2", "line 1\\nline 2"),
        ("line 1\r\nline 2", "line 1\\nline 2"),
        ("line 1\rline 2", "line 1\\nline 2"),
        ("\\n is not a newline", "\\\\n is not a newline"),
        ('a:b "quoted"', 'a:b "quoted"'),
        ("tab\there", "tab\there"),
        ("bell\x07 and nul\x00 gone", "bell and nul gone"),
        ("cafe\u0301", "café"),  # NFC, so one character stays one character
        ("ñandú 🎉", "ñandú 🎉"),
        ("", ""),
    ],
)
def test_escape_text(raw: str, escaped: str) -> None:
    assert escape_text(raw) == escaped


@pytest.mark.parametrize(
    "value",
    [
        "Temas: seguridad; luminarias, basura.\nTraer propuestas \\ ideas.",
        "ñ" * 200,
        "🎉" * 100,
        "a" + "€" * 80,
        "ab" + "ñ" * 80,
        "x" * 74 + "ñ" + "x" * 200,
        ",;\\\n" * 60,
        "Junta de vecinos — Pasaje Los Álamos Nº 1234, Población Santa Adriana, Lo Espejo " * 4,
    ],
)
def test_long_values_fold_and_unfold_back(value: str) -> None:
    data = invitation(title=value, place=value, description=value)
    lines = physical_lines(data)
    for line in lines:
        assert len(line) <= 75
        line.decode()  # never a multi-byte character cut in two
        assert b"\r" not in line and b"\n" not in line
    assert any(line.startswith(b" ") for line in lines)
    props = properties(data)
    for name in ("SUMMARY", "LOCATION", "DESCRIPTION"):
        assert unescape(props[name]) == value


def test_line_endings_are_crlf_only() -> None:
    data = invitation(description="uno\ndos\r\ntres\rcuatro")
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
    assert data.endswith(b"END:VCALENDAR\r\n")


@pytest.mark.parametrize(
    ("line", "physical"),
    [
        ("x" * 75, [b"x" * 75]),
        ("x" * 76, [b"x" * 75, b" x"]),
        ("x" * 149, [b"x" * 75, b" " + b"x" * 74]),
        ("x" * 150, [b"x" * 75, b" " + b"x" * 74, b" x"]),
        ("x" * 74 + "ñ", [b"x" * 74, " ñ".encode()]),
        ("x" * 73 + "ñ", ["x" * 73 + "ñ"]),
        ("x" * 72 + "🎉", [b"x" * 72, " 🎉".encode()]),
        ("x" * 71 + "🎉", ["x" * 71 + "🎉"]),
        ("", [b""]),
    ],
)
def test_fold_line_boundaries(line: str, physical: list[bytes | str]) -> None:
    expected = [part.encode() if isinstance(part, str) else part for part in physical]
    assert fold_line(line) == b"\r\n".join(expected) + b"\r\n"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"starts_at": datetime(2026, 11, 26, 19)}, "aware"),
        ({"now": datetime(2026, 11, 24, 18)}, "aware"),
        ({"duration": timedelta(0)}, "positive"),
        ({"duration": timedelta(minutes=-5)}, "positive"),
        ({"sequence": -1}, "negative"),
        ({"uid": " "}, "uid"),
        ({"zone_name": "America/Gotham"}, "time zone"),
        ({"zone_name": "../etc/passwd"}, "time zone"),
    ],
)
def test_invalid_arguments(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        invitation(**changes)


def test_uid_is_escaped_like_any_text() -> None:
    assert properties(invitation(uid="a,b;c"))["UID"] == "a\\,b\\;c"


@pytest.mark.parametrize(
    ("title", "filename"),
    [
        ("Reunión barrio Estación", "reunion-barrio-estacion.ics"),
        ("  ¡Reunión URGENTE!  ", "reunion-urgente.ics"),
        ("Ñuñoa / Providencia: 28-11", "nunoa-providencia-28-11.ics"),
        ("../../etc/passwd", "etc-passwd.ics"),
        ("🎉🎉", "reunion.ics"),
        ("", "reunion.ics"),
        ("a" * 100, "a" * 60 + ".ics"),
        ("a" * 59 + " b", "a" * 59 + ".ics"),
    ],
)
def test_ics_filename(title: str, filename: str) -> None:
    assert ics_filename(title) == filename
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*\.ics", filename)
