"""Meeting invitations: RFC 5545 structure, TEXT escaping, CRLF and UTF-8-safe line folding,
and recurring series (RRULE, EXDATE, RECURRENCE-ID in the barrio's TZID, moved dates as
their own VEVENTs beside the series')."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rruleset, rrulestr
from icalendar import Calendar

from handlers.ics import Override, escape_text, ics_filename, meeting_ics
from handlers.recurrence import Rule, occurrences, parse_rule

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
        ("\\N is not one either", "\\\\N is not one either"),
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
    assert properties(invitation(title=raw))["SUMMARY"] == escaped


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


@pytest.mark.parametrize("length", range(62, 72))
@pytest.mark.parametrize("tail", ["", "ñ", "€", "🎉", "\\", ",", "ñ" * 40])
def test_folding_at_the_75_octet_boundary(length: int, tail: str) -> None:
    # "SUMMARY:" is 8 octets: these lines end right around the limit.
    title = "x" * length + tail
    data = invitation(title=title)
    for line in physical_lines(data):
        assert len(line) <= 75
        line.decode()
    assert unescape(properties(data)["SUMMARY"]) == title


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


# Series: a rule repeats in the barrio's wall time, so its file carries TZID and VTIMEZONE.
SERIES_NOW = datetime(2026, 11, 24, 15, tzinfo=SANTIAGO).astimezone(UTC)
THURSDAYS = parse_rule("todos los jueves a las 19:00", SERIES_NOW, SANTIAGO)


def event_lines(data: bytes) -> list[str]:
    lines = unfold(data)
    return lines[lines.index("BEGIN:VEVENT") + 1 : lines.index("END:VEVENT")]


def event_properties(data: bytes) -> dict[str, str]:
    """The VEVENT's properties, named with their parameters ("DTSTART;TZID=...")."""
    return dict(line.split(":", 1) for line in event_lines(data))


def series(**changes: object) -> bytes:
    assert isinstance(THURSDAYS, Rule)
    arguments: dict[str, object] = {"starts_at": THURSDAYS.start, "rrule": THURSDAYS.rrule}
    arguments.update(changes)
    return invitation(**arguments)


def test_one_off_meetings_carry_no_time_zone_definition() -> None:
    data = invitation()
    assert b"TZID" not in data and b"VTIMEZONE" not in data and b"RRULE" not in data


def test_weekly_series_with_a_cancelled_occurrence() -> None:
    cancelled = datetime(2026, 12, 3, 22, tzinfo=UTC)  # Thursday 3 December, 19:00 in Santiago
    data = series(exdates=[cancelled], sequence=4)
    props = event_properties(data)
    assert props["RRULE"] == "FREQ=WEEKLY;BYDAY=TH"
    assert props["DTSTART;TZID=America/Santiago"] == "20261126T190000"
    assert props["EXDATE;TZID=America/Santiago"] == "20261203T190000"
    assert props["DURATION"] == "PT1H30M"
    assert "DTEND" not in props and "DTSTART" not in props
    assert props["UID"] == "meeting-42@barrioconecta"
    assert props["SEQUENCE"] == "4"
    assert props["DTSTAMP"] == "20261124T180000Z"
    assert props["STATUS"] == "CONFIRMED"
    assert props["SUMMARY"] == "Reunión barrio Estación"
    lines = unfold(data)
    assert "METHOD:PUBLISH" in lines
    # The zone is defined before the event that names it.
    assert lines.index("BEGIN:VTIMEZONE") < lines.index("BEGIN:VEVENT")
    assert lines[lines.index("BEGIN:VTIMEZONE") + 1] == "TZID:America/Santiago"
    assert lines[-2:] == ["END:VEVENT", "END:VCALENDAR"]
    for line in physical_lines(data):
        assert len(line) <= 75


def test_series_parses_back_and_its_occurrences_skip_the_cancelled_one() -> None:
    assert isinstance(THURSDAYS, Rule)
    cancelled = occurrences(THURSDAYS, SANTIAGO, SERIES_NOW, SERIES_NOW + timedelta(days=30))[1]
    data = series(exdates=[cancelled.at])
    (event,) = Calendar.from_ical(data).walk("VEVENT")
    start = event["DTSTART"].dt
    assert start == datetime(2026, 11, 26, 19, tzinfo=SANTIAGO)
    assert str(start.tzinfo) == "America/Santiago"
    assert event["DURATION"].dt == timedelta(hours=1, minutes=30)
    recurrence = rruleset()
    recurrence.rrule(rrulestr(event["RRULE"].to_ical().decode(), dtstart=start))
    for exdate in event["EXDATE"].dts:
        recurrence.exdate(exdate.dt)
    window = (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 12, 25, tzinfo=UTC))
    from_file = [moment.astimezone(UTC) for moment in recurrence.between(*window)]
    assert from_file == [
        datetime(2026, 11, 26, 22, tzinfo=UTC),
        datetime(2026, 12, 10, 22, tzinfo=UTC),
        datetime(2026, 12, 17, 22, tzinfo=UTC),
        datetime(2026, 12, 24, 22, tzinfo=UTC),
    ]
    # The bot's own reckoning agrees with what a calendar reads from the file.
    ours = occurrences(THURSDAYS, SANTIAGO, *window, exclude=[cancelled.local])
    assert [o.at for o in ours] == from_file


def test_exdates_as_instants_or_wall_times_and_in_order() -> None:
    by_instant = series(
        exdates=[datetime(2026, 12, 17, 22, tzinfo=UTC), datetime(2026, 12, 3, 22, tzinfo=UTC)]
    )
    by_wall_time = series(exdates=[datetime(2026, 12, 3, 19), datetime(2026, 12, 17, 19)])
    assert by_instant == by_wall_time
    assert event_properties(by_instant)["EXDATE;TZID=America/Santiago"] == (
        "20261203T190000,20261217T190000"
    )


def test_series_start_as_instant_or_wall_time() -> None:
    assert isinstance(THURSDAYS, Rule)
    aware = datetime(2026, 11, 26, 22, tzinfo=UTC)
    assert series(starts_at=aware) == series(starts_at=THURSDAYS.start)


def test_series_exdate_in_the_skipped_hour_names_the_rule_wall_time() -> None:
    now = datetime(2026, 8, 25, 12, tzinfo=SANTIAGO).astimezone(UTC)
    sundays = parse_rule("todos los domingos a las 00:30", now, SANTIAGO)
    assert isinstance(sundays, Rule)
    # 00:30 did not exist on 6 September 2026: that meeting happened at 04:00 UTC.
    data = series(
        starts_at=sundays.start,
        rrule=sundays.rrule,
        exdates=[datetime(2026, 9, 6, 4, tzinfo=UTC)],
    )
    props = event_properties(data)
    assert props["DTSTART;TZID=America/Santiago"] == "20260830T003000"
    assert props["EXDATE;TZID=America/Santiago"] == "20260906T003000"
    # An instant right after the jump does not say which wall time started the series.
    with pytest.raises(ValueError, match="naive wall time"):
        series(starts_at=datetime(2026, 9, 6, 4, tzinfo=UTC), rrule=sundays.rrule)


def test_series_cancellation() -> None:
    props = event_properties(series(cancelled=True, sequence=5))
    assert props["RRULE"] == "FREQ=WEEKLY;BYDAY=TH"
    assert props["STATUS"] == "CANCELLED"
    assert props["SEQUENCE"] == "5"
    assert "METHOD:CANCEL" in unfold(series(cancelled=True, sequence=5))


def test_one_occurrence_moved() -> None:
    data = invitation(
        starts_at=datetime(2026, 12, 11, 19, tzinfo=SANTIAGO),
        recurrence_id=datetime(2026, 12, 10, 19),
        sequence=2,
    )
    props = event_properties(data)
    assert props["RECURRENCE-ID;TZID=America/Santiago"] == "20261210T190000"
    assert props["DTSTART"] == "20261211T220000Z"
    assert props["DTEND"] == "20261211T233000Z"
    assert props["UID"] == "meeting-42@barrioconecta"
    assert props["SEQUENCE"] == "2"
    assert "RRULE" not in props
    assert "BEGIN:VTIMEZONE" in unfold(data)
    assert "METHOD:PUBLISH" in unfold(data)
    # The occurrence may be named by its instant as well.
    same = invitation(
        starts_at=datetime(2026, 12, 11, 19, tzinfo=SANTIAGO),
        recurrence_id=datetime(2026, 12, 10, 22, tzinfo=UTC),
        sequence=2,
    )
    assert same == data


def test_one_occurrence_cancelled() -> None:
    data = invitation(
        starts_at=datetime(2026, 12, 10, 19),
        recurrence_id=datetime(2026, 12, 10, 19),
        cancelled=True,
        sequence=3,
    )
    props = event_properties(data)
    assert "METHOD:CANCEL" in unfold(data)
    assert props["STATUS"] == "CANCELLED"
    assert props["RECURRENCE-ID;TZID=America/Santiago"] == "20261210T190000"
    assert props["DTSTART"] == "20261210T220000Z"


def as_a_calendar_reads_it(data: bytes, after: datetime, before: datetime) -> list[datetime]:
    """The starts a calendar shows from the file: the rule's dates less EXDATE, each VEVENT
    with a RECURRENCE-ID standing in for the date it names (RFC 5545 §3.8.4.4)."""
    (master, *overrides) = Calendar.from_ical(data).walk("VEVENT")
    start = master["DTSTART"].dt
    recurrence = rruleset()
    recurrence.rrule(rrulestr(master["RRULE"].to_ical().decode(), dtstart=start))
    for exdate in master["EXDATE"].dts if "EXDATE" in master else ():
        recurrence.exdate(exdate.dt)
    for override in overrides:
        assert override["UID"] == master["UID"] and "RRULE" not in override
        recurrence.exdate(override["RECURRENCE-ID"].dt)
        recurrence.rdate(override["DTSTART"].dt)
    return [moment.astimezone(UTC) for moment in recurrence.between(after, before)]


def test_series_with_a_moved_and_a_cancelled_date() -> None:
    assert isinstance(THURSDAYS, Rule)
    dates = occurrences(THURSDAYS, SANTIAGO, SERIES_NOW, SERIES_NOW + timedelta(days=30))
    cancelled, moved = dates[1], dates[2]  # Thursdays 3 and 10 December, 19:00
    new_start = datetime(2026, 12, 11, 18, 30, tzinfo=SANTIAGO)  # Friday, 21:30 UTC
    data = series(
        exdates=[cancelled.at], overrides=[Override(moved.local, new_start, 1)], sequence=2
    )
    master, override = Calendar.from_ical(data).walk("VEVENT")
    assert master["SEQUENCE"] == 2 and override["SEQUENCE"] == 1
    recurrence_id = override["RECURRENCE-ID"].dt
    assert recurrence_id == datetime(2026, 12, 10, 19, tzinfo=SANTIAGO)
    assert str(recurrence_id.tzinfo) == "America/Santiago"
    assert override["DTSTART"].dt == new_start
    assert override["DTEND"].dt == new_start + timedelta(hours=1, minutes=30)
    assert override["SUMMARY"] == master["SUMMARY"] and override["STATUS"] == "CONFIRMED"
    lines = unfold(data)
    assert "RECURRENCE-ID;TZID=America/Santiago:20261210T190000" in lines
    assert "DTSTART:20261211T213000Z" in lines
    assert lines.count("BEGIN:VTIMEZONE") == 1 and lines.count("BEGIN:VEVENT") == 2
    assert lines.index("BEGIN:VTIMEZONE") < lines.index("BEGIN:VEVENT")

    window = (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 12, 25, tzinfo=UTC))
    shown = as_a_calendar_reads_it(data, *window)
    assert shown == [
        datetime(2026, 11, 26, 22, tzinfo=UTC),
        datetime(2026, 12, 11, 21, 30, tzinfo=UTC),  # the moved date, once, at its new time
        datetime(2026, 12, 17, 22, tzinfo=UTC),
        datetime(2026, 12, 24, 22, tzinfo=UTC),
    ]
    assert moved.at not in shown and cancelled.at not in shown
    # Without the override a calendar shows the moved date at its old time.
    assert moved.at in as_a_calendar_reads_it(series(exdates=[cancelled.at]), *window)


def test_overrides_named_by_instant_or_wall_time_come_in_the_rule_order() -> None:
    first = Override(datetime(2026, 12, 10, 19), datetime(2026, 12, 11, 22, tzinfo=UTC), 1)
    second = Override(datetime(2026, 12, 3, 19), datetime(2026, 12, 3, 20), 3)
    by_wall_time = series(overrides=[first, second])
    by_instant = series(
        overrides=[
            second._replace(occurrence=datetime(2026, 12, 3, 22, tzinfo=UTC)),
            first._replace(occurrence=datetime(2026, 12, 10, 22, tzinfo=UTC)),
        ]
    )
    assert by_wall_time == by_instant
    named = [line for line in unfold(by_wall_time) if line.startswith("RECURRENCE-ID")]
    assert named == [
        "RECURRENCE-ID;TZID=America/Santiago:20261203T190000",
        "RECURRENCE-ID;TZID=America/Santiago:20261210T190000",
    ]
    assert "DTSTART:20261203T230000Z" in unfold(by_wall_time)  # 20:00 as wall time


def test_recurrence_id_on_the_second_pass_of_a_repeated_hour_is_refused() -> None:
    # 03:30 UTC on 5 April 2026 is the second 23:30 of the night: no rule names it.
    with pytest.raises(ValueError, match="second pass"):
        invitation(recurrence_id=datetime(2026, 4, 5, 3, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exdates": [datetime(2026, 12, 3, 22, tzinfo=UTC)]}, "need an rrule"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=TH", "recurrence_id": datetime(2026, 12, 3, 19)}, "exclude"),
        ({"rrule": "FREQ=DAILY", "starts_at": datetime(2026, 11, 26, 19)}, "unsupported"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 25, 19)}, "occurrence"),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 26, 19),
             "exdates": [datetime(2026, 12, 4, 19)]},
            "not an occurrence",
        ),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 26, 19),
             "exdates": [datetime(2026, 11, 19, 19)]},
            "not an occurrence",
        ),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 26, 19),
             "exdates": [datetime(2026, 12, 3, 19, tzinfo=UTC)]},
            "not an occurrence",
        ),
        (
            {"overrides": [Override(datetime(2026, 12, 3, 19), datetime(2026, 12, 4, 19), 1)]},
            "need an rrule",
        ),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 26, 19),
             "overrides": [Override(datetime(2026, 12, 4, 19), datetime(2026, 12, 5, 19), 1)]},
            "not an occurrence",
        ),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 26, 19),
             "exdates": [datetime(2026, 12, 3, 19)],
             "overrides": [Override(datetime(2026, 12, 3, 19), datetime(2026, 12, 4, 19), 1)]},
            "cancelled or named twice",
        ),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 26, 19),
             "overrides": [Override(datetime(2026, 12, 3, 19), datetime(2026, 12, 4, 19), 1),
                           Override(datetime(2026, 12, 3, 22, tzinfo=UTC),
                                    datetime(2026, 12, 5, 19), 2)]},
            "cancelled or named twice",
        ),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 26, 19),
             "cancelled": True,
             "overrides": [Override(datetime(2026, 12, 3, 19), datetime(2026, 12, 4, 19), 1)]},
            "exclude",
        ),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=TH", "starts_at": datetime(2026, 11, 26, 19),
             "overrides": [Override(datetime(2026, 12, 3, 19), datetime(2026, 12, 4, 19), -1)]},
            "negative",
        ),
    ],
)  # fmt: skip
def test_invalid_series_arguments(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        invitation(**changes)
