"""Reading and saying meeting times: every accepted phrase, the refusals, and Chile's DST jumps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.when import describe_when, parse_when

SANTIAGO = ZoneInfo("America/Santiago")
# Tuesday 24 November 2026, 15:00 in Santiago (summer time, UTC-3).
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=SANTIAGO).astimezone(UTC)


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SANTIAGO)


def test_fixed_now_is_a_tuesday_afternoon() -> None:
    assert NOW.astimezone(SANTIAGO).strftime("%A %H:%M") == "Tuesday 15:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The phrases from the brief.
        ("jueves 19:00", local(2026, 11, 26, 19)),
        ("el jueves a las 7 de la tarde", local(2026, 11, 26, 19)),
        ("28/11 18:30", local(2026, 11, 28, 18, 30)),
        ("28/11/2026 18:30", local(2026, 11, 28, 18, 30)),
        ("28-11 18.30", local(2026, 11, 28, 18, 30)),
        ("mañana a las 7 de la tarde", local(2026, 11, 25, 19)),
        ("mañana 9", local(2026, 11, 25, 9)),
        ("hoy 20:00", local(2026, 11, 24, 20)),
        ("pasado mañana 10:30", local(2026, 11, 26, 10, 30)),
        ("lunes 8 de la mañana", local(2026, 11, 30, 8)),
        ("28 de noviembre a las 18:30", local(2026, 11, 28, 18, 30)),
        ("sábado 10am", local(2026, 11, 28, 10)),
        ("19 hrs", local(2026, 11, 24, 19)),
        ("7 pm", local(2026, 11, 24, 19)),
        ("mediodía", local(2026, 11, 25, 12)),
        ("a las 12 del día", local(2026, 11, 25, 12)),
        # Case, accents, spacing and punctuation do not matter.
        ("  MAÑANA   A LAS 7  DE LA TARDE  ", local(2026, 11, 25, 19)),
        ("manana 9", local(2026, 11, 25, 9)),
        ("Sabado 10 AM", local(2026, 11, 28, 10)),
        ("sábado 10 a. m.", local(2026, 11, 28, 10)),
        ("sábado 10 a.m.", local(2026, 11, 28, 10)),
        ("7 p.m.", local(2026, 11, 24, 19)),
        ("MEDIODIA", local(2026, 11, 25, 12)),
        ("medio día", local(2026, 11, 25, 12)),
        ("al mediodía del jueves", local(2026, 11, 26, 12)),
        ("el miercoles, a las 19:00.", local(2026, 11, 25, 19)),
        ("¿el jueves a las 7?", local(2026, 11, 26, 19)),
        # Weekdays: today only while the time is still ahead, else next week.
        ("martes 16:00", local(2026, 11, 24, 16)),
        ("martes 15:00", local(2026, 12, 1, 15)),
        ("martes 14:00", local(2026, 12, 1, 14)),
        ("domingo 11:00", local(2026, 11, 29, 11)),
        ("miércoles 9 de la mañana", local(2026, 11, 25, 9)),
        ("viernes a la 1 de la tarde", local(2026, 11, 27, 13)),
        # A time alone: today while ahead, else tomorrow.
        ("20:00", local(2026, 11, 24, 20)),
        ("15:00", local(2026, 11, 25, 15)),
        ("14:59", local(2026, 11, 25, 14, 59)),
        ("a las 9", local(2026, 11, 25, 9)),
        ("19 horas", local(2026, 11, 24, 19)),
        ("19:00 hrs", local(2026, 11, 24, 19)),
        ("19h", local(2026, 11, 24, 19)),
        ("00:30", local(2026, 11, 25, 0, 30)),
        # A bare hour 1-7 is afternoon; a leading zero or "hrs" means the 24-hour clock.
        ("a las 7", local(2026, 11, 24, 19)),
        ("jueves 7", local(2026, 11, 26, 19)),
        ("jueves 7:30", local(2026, 11, 26, 19, 30)),
        ("jueves 07:30", local(2026, 11, 26, 7, 30)),
        ("jueves 07", local(2026, 11, 26, 7)),
        ("jueves 7 hrs", local(2026, 11, 26, 7)),
        ("jueves 8", local(2026, 11, 26, 8)),
        ("jueves 12", local(2026, 11, 26, 12)),
        ("jueves 0:15", local(2026, 11, 26, 0, 15)),
        # Periods of the day.
        ("jueves 7 de la mañana", local(2026, 11, 26, 7)),
        ("jueves 7 am", local(2026, 11, 26, 7)),
        ("jueves 11 am", local(2026, 11, 26, 11)),
        ("jueves 8 de la noche", local(2026, 11, 26, 20)),
        ("jueves 11 de la noche", local(2026, 11, 26, 23)),
        ("jueves 1 de la tarde", local(2026, 11, 26, 13)),
        ("jueves 12 pm", local(2026, 11, 26, 12)),
        ("jueves 19:00 pm", local(2026, 11, 26, 19)),
        ("jueves 7 y media de la tarde", local(2026, 11, 26, 19, 30)),
        ("jueves 9 y cuarto", local(2026, 11, 26, 9, 15)),
        ("jueves en la tarde a las 6", local(2026, 11, 26, 18)),
        ("la mañana del jueves a las 9", local(2026, 11, 26, 9)),
        ("jueves 9 por la mañana", local(2026, 11, 26, 9)),
        ("jueves 11 del día", local(2026, 11, 26, 11)),
        # Dates: without a year the next occurrence, with one taken as written.
        ("10/01 9:00", local(2027, 1, 10, 9)),
        ("1/1 10:00", local(2027, 1, 1, 10)),
        ("24/11 20:00", local(2026, 11, 24, 20)),
        ("28/11/26 18:30", local(2026, 11, 28, 18, 30)),
        ("28-11-2026 18:30", local(2026, 11, 28, 18, 30)),
        ("28/11/2027 18:30", local(2027, 11, 28, 18, 30)),
        ("29/02/2028 10:00", local(2028, 2, 29, 10)),
        ("28 noviembre 18:30", local(2026, 11, 28, 18, 30)),
        ("28 de nov a las 18:30", local(2026, 11, 28, 18, 30)),
        ("3 de enero a las 10", local(2027, 1, 3, 10)),
        ("el día 28 de noviembre a las 18:30", local(2026, 11, 28, 18, 30)),
        ("28 de noviembre de 2027 a las 18:30", local(2027, 11, 28, 18, 30)),
        ("15 de setiembre 12:00", local(2027, 9, 15, 12)),
        ("sábado 28 de noviembre a las 10:00", local(2026, 11, 28, 10)),
        ("sábado 28/11 10am", local(2026, 11, 28, 10)),
        ("hoy martes 24 de noviembre a las 20:00", local(2026, 11, 24, 20)),
        ("mañana miércoles 25 de noviembre a las 19:00", local(2026, 11, 25, 19)),
        ("mañana 25/11 19:00", local(2026, 11, 25, 19)),
        # Explicit days are literal, even when already past: the caller decides.
        ("hoy 10:00", local(2026, 11, 24, 10)),
        ("24/11 10:00", local(2026, 11, 24, 10)),
        ("28/11/2020 18:30", local(2020, 11, 28, 18, 30)),
    ],
)
def test_understood(text: str, expected: datetime) -> None:
    moment = parse_when(text, NOW, SANTIAGO)
    assert moment == expected
    assert moment is not None and moment.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "...",
        # A day without a time is not a meeting.
        "jueves",
        "mañana",
        "28/11",
        "28 de noviembre",
        "pasado mañana",
        # A lone number may be a day as well as an hour.
        "9",
        "el 28",
        # Impossible days, hours and minutes.
        "31/02 10:00",
        "30/02/2027 10:00",
        "29/02 10:00",
        "28/13 10:00",
        "0/11 10:00",
        "32/11 10:00",
        "31 de noviembre a las 10",
        "25:00",
        "24:00",
        "a las 25",
        "jueves 19:60",
        "jueves 18:75",
        "a las 2026",
        "28.11 10:00",
        "28/11/202 18:30",
        "28/11/202",
        "28/11/20266 18:30",
        "123/11 10:00",
        "18:300",
        # Hours that contradict their period, or whose day is unclear.
        "jueves 13 de la mañana",
        "jueves 0 am",
        "jueves 12 am",
        "jueves 12 de la noche",
        "jueves 2 de la noche",
        "jueves 13 del día",
        "medianoche",
        # Contradictions and things said twice.
        "jueves viernes 19:00",
        "jueves jueves 19:00",
        "19:00 20:00",
        "a las 7 a las 8",
        "hoy mañana 10:00",
        "mañana pasado mañana 10:00",
        "miércoles 26/11 18:00",
        "lunes 28 de noviembre a las 10",
        "jueves 10 am pm",
        "jueves 10 de la mañana de la tarde",
        "mediodía 12:00",
        "28/11 29/11 10:00",
        # Words not understood: better to ask again than to guess.
        "el jueves a las 7 con pan",
        "jueves 19:00 o viernes",
        "el próximo jueves 19:00",
        "el jueves que viene a las 7",
        "en la tarde",
        "hoy 10:00 ✓",
        "hoy 10:00 @casa",
        "2026-11-28 18:30",
        "jueves 19:00 - 20:00",
        "reunión jueves 19:00",
    ],
)
def test_refused(text: str) -> None:
    assert parse_when(text, NOW, SANTIAGO) is None


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_when("jueves 19:00", datetime(2026, 11, 24, 15), SANTIAGO)


def test_now_in_another_zone_is_the_same_instant() -> None:
    elsewhere = NOW.astimezone(ZoneInfo("Asia/Tokyo"))
    assert parse_when("a las 9", elsewhere, SANTIAGO) == local(2026, 11, 25, 9)


def test_year_rolls_over_on_new_years_eve() -> None:
    now = local(2026, 12, 31, 22).astimezone(UTC)
    assert parse_when("2/1 10:00", now, SANTIAGO) == local(2027, 1, 2, 10)
    assert parse_when("jueves 10:00", now, SANTIAGO) == local(2027, 1, 7, 10)
    assert parse_when("mañana 10:00", now, SANTIAGO) == local(2027, 1, 1, 10)
    assert parse_when("21:00", now, SANTIAGO) == local(2027, 1, 1, 21)


# Chile springs forward at 2026-09-06 00:00 (to 01:00) and falls back at 2026-04-05 00:00
# (to 2026-04-04 23:00); the test below checks these dates against the installed tzdata.
SATURDAY_BEFORE_SPRING = datetime(2026, 9, 5, 12, tzinfo=SANTIAGO).astimezone(UTC)


def test_dst_transitions_are_where_the_tests_expect_them() -> None:
    before, after = datetime(2026, 9, 6, 3, 59, tzinfo=UTC), datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert before.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-4)
    assert after.astimezone(SANTIAGO).hour == 1
    assert after.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-3)
    before, after = datetime(2026, 4, 5, 2, 59, tzinfo=UTC), datetime(2026, 4, 5, 3, tzinfo=UTC)
    assert before.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-3)
    assert after.astimezone(SANTIAGO).replace(tzinfo=None) == datetime(2026, 4, 4, 23)


@pytest.mark.parametrize(
    ("text", "expected_local"),
    [
        ("domingo 00:30", "2026-09-06 01:30"),
        ("mañana 00:30", "2026-09-06 01:30"),
        ("6/9 0:30", "2026-09-06 01:30"),
        ("6/9/2026 00:00", "2026-09-06 01:00"),
        ("00:59", "2026-09-06 01:59"),
        ("domingo 01:00", "2026-09-06 01:00"),
        ("domingo 7 de la tarde", "2026-09-06 19:00"),
    ],
)
def test_time_skipped_by_spring_forward_moves_forward_by_the_gap(
    text: str, expected_local: str
) -> None:
    moment = parse_when(text, SATURDAY_BEFORE_SPRING, SANTIAGO)
    assert moment is not None
    assert moment.astimezone(SANTIAGO).strftime("%Y-%m-%d %H:%M") == expected_local


def test_repeated_hour_on_fall_back_takes_the_first_one() -> None:
    now = datetime(2026, 4, 1, 12, tzinfo=SANTIAGO).astimezone(UTC)
    moment = parse_when("4/4 23:30", now, SANTIAGO)
    assert moment == datetime(2026, 4, 5, 2, 30, tzinfo=UTC)  # 23:30 at UTC-3, before the change


@pytest.mark.parametrize(
    ("moment", "now", "expected"),
    [
        (local(2026, 11, 26, 19), None, "jueves 26 de noviembre a las 19:00"),
        (local(2026, 11, 26, 19), NOW, "jueves 26 de noviembre a las 19:00"),
        (local(2026, 11, 25, 19), NOW, "mañana miércoles 25 de noviembre a las 19:00"),
        (local(2026, 11, 24, 20), NOW, "hoy martes 24 de noviembre a las 20:00"),
        (local(2026, 11, 24, 10), NOW, "hoy martes 24 de noviembre a las 10:00"),
        (local(2026, 11, 25, 19), None, "miércoles 25 de noviembre a las 19:00"),
        (local(2026, 11, 28, 9, 5), NOW, "sábado 28 de noviembre a las 09:05"),
        (local(2026, 11, 29, 0, 0), NOW, "domingo 29 de noviembre a las 00:00"),
        (local(2026, 11, 30, 13), NOW, "lunes 30 de noviembre a la 13:00"),
        (local(2026, 12, 1, 1, 30), NOW, "martes 1 de diciembre a la 01:30"),
        (local(2027, 1, 10, 9), NOW, "domingo 10 de enero de 2027 a las 09:00"),
        (local(2027, 1, 10, 9), None, "domingo 10 de enero a las 09:00"),
        (local(2026, 9, 16, 18), None, "miércoles 16 de septiembre a las 18:00"),
        # The moment's own zone does not matter, only the instant.
        (datetime(2026, 11, 26, 22, tzinfo=UTC), None, "jueves 26 de noviembre a las 19:00"),
        (
            datetime(2026, 11, 25, 3, tzinfo=UTC),
            NOW,
            "mañana miércoles 25 de noviembre a las 00:00",
        ),
    ],
)
def test_describe(moment: datetime, now: datetime | None, expected: str) -> None:
    assert describe_when(moment, SANTIAGO, now) == expected


def test_describe_rejects_naive_moments() -> None:
    with pytest.raises(ValueError):
        describe_when(datetime(2026, 11, 26, 19), SANTIAGO)


@pytest.mark.parametrize(
    "moment",
    [
        local(2026, 11, 24, 20),
        local(2026, 11, 25, 7, 30),
        local(2026, 11, 26, 19),
        local(2026, 11, 30, 13),
        local(2026, 12, 1, 1, 15),
        local(2026, 12, 31, 23, 59),
        local(2027, 1, 10, 0, 0),
        local(2027, 9, 18, 12),
    ],
)
def test_parse_reads_what_describe_says(moment: datetime) -> None:
    for now in (NOW, None):
        words = describe_when(moment, SANTIAGO, now)
        if now is None and moment.year != 2026:
            continue  # without `now` the year is left out, so it cannot be read back
        assert parse_when(words, NOW, SANTIAGO) == moment, words
