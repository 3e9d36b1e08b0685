"""Why a date typed gives no meeting: a day that does not exist, a moment gone by, or a day
without its hour, then the hour answered on that day; and a funding call's day alone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.when import (
    DayWithoutTime,
    NoSuchDay,
    Past,
    parse_when,
    read_day,
    read_when,
    why_not,
)

SANTIAGO = ZoneInfo("America/Santiago")
PUNTA_ARENAS = ZoneInfo("America/Punta_Arenas")
# Tuesday 24 November 2026, 15:00 in Santiago (summer time, UTC-3).
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=SANTIAGO).astimezone(UTC)
THURSDAY = date(2026, 11, 26)


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SANTIAGO)


@pytest.mark.parametrize(
    ("text", "expected", "said"),
    [
        ("30/02 10:00", NoSuchDay(30, 2, None), "El 30 de febrero no existe."),
        ("31/02", NoSuchDay(31, 2, None), "El 31 de febrero no existe."),
        (
            "31/11",
            NoSuchDay(31, 11, None),
            "El 31 de noviembre no existe. Noviembre tiene 30 días.",
        ),
        ("31 de abril a las 10", NoSuchDay(31, 4, None), "Abril tiene 30 días."),
        ("el 31 de junio", NoSuchDay(31, 6, None), "Junio tiene 30 días."),
        ("31/9/2027 19:00", NoSuchDay(31, 9, None), "Septiembre tiene 30 días."),
        # 29 February: this year's is gone and next year's does not exist.
        ("29/02", NoSuchDay(29, 2, 2027), "El 29 de febrero no existe en 2027"),
        ("29/02/2027 10:00", NoSuchDay(29, 2, 2027), "no existe en 2027"),
        ("29 de febrero de 2030", NoSuchDay(29, 2, 2030), "no existe en 2030"),
    ],
)
def test_a_day_that_does_not_exist(text: str, expected: NoSuchDay, said: str) -> None:
    reading = read_when(text, NOW, SANTIAGO)
    assert reading == expected
    assert isinstance(reading, NoSuchDay) and said in why_not(reading, SANTIAGO, NOW)
    assert parse_when(text, NOW, SANTIAGO) is None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("ayer a las 10", "Esa fecha ya pasó: ayer lunes 23 de noviembre a las 10:00."),
        ("ayer", "Esa fecha ya pasó: ayer lunes 23 de noviembre."),
        ("anteayer 19:00", "Esa fecha ya pasó: domingo 22 de noviembre a las 19:00."),
        ("antes de ayer", "Esa fecha ya pasó: domingo 22 de noviembre."),
        ("hoy 10:00", "Esa fecha ya pasó: hoy martes 24 de noviembre a las 10:00."),
        ("hoy a las 15:00", "Esa fecha ya pasó: hoy martes 24 de noviembre a las 15:00."),
        ("24/11 9:00", "ya pasó: hoy martes 24 de noviembre a las 09:00."),
        ("28/11/2020 18:30", "ya pasó: sábado 28 de noviembre de 2020 a las 18:30."),
        ("1/11/2026", "ya pasó: domingo 1 de noviembre."),
    ],
)
def test_a_moment_gone_by_is_said_in_words(text: str, said: str) -> None:
    reading = read_when(text, NOW, SANTIAGO)
    assert isinstance(reading, Past)
    assert said in why_not(reading, SANTIAGO, NOW)


@pytest.mark.parametrize(
    ("text", "day", "period"),
    [
        ("el jueves en la tarde", THURSDAY, "pm"),
        ("jueves", THURSDAY, None),
        ("el jueves en la mañana", THURSDAY, "am"),
        ("jueves en la noche", THURSDAY, "night"),
        ("el 10 de diciembre", date(2026, 12, 10), None),
        ("10/12", date(2026, 12, 10), None),
        ("mañana", date(2026, 11, 25), None),
        ("mañana en la tarde", date(2026, 11, 25), "pm"),
        ("pasado mañana", THURSDAY, None),
        ("hoy", date(2026, 11, 24), None),
        ("martes", date(2026, 11, 24), None),  # today: the hour answered says if still ahead
        ("jueves 26/11", THURSDAY, None),
        ("3 de enero", date(2027, 1, 3), None),
    ],
)
def test_a_day_without_hour_is_kept(text: str, day: date, period: str | None) -> None:
    assert read_when(text, NOW, SANTIAGO) == DayWithoutTime(day, period)


@pytest.mark.parametrize(
    "text", ["", "pronto", "en la tarde", "9", "el 28", "miércoles 26/11", "28/13", "0/11", "32/11"]
)
def test_anything_else_is_not_understood(text: str) -> None:
    assert read_when(text, NOW, SANTIAGO) is None


@pytest.mark.parametrize(
    ("answer", "period", "expected"),
    [
        ("19:00", "pm", local(2026, 11, 26, 19)),
        ("7 de la tarde", "pm", local(2026, 11, 26, 19)),
        ("a las 19", "pm", local(2026, 11, 26, 19)),
        ("7", "pm", local(2026, 11, 26, 19)),
        ("6 y media", "pm", local(2026, 11, 26, 18, 30)),
        ("19 hrs", None, local(2026, 11, 26, 19)),
        ("7", None, local(2026, 11, 26, 19)),  # a bare 1-7 is afternoon, as everywhere
        ("9", None, local(2026, 11, 26, 9)),  # a lone number is surely an hour here
        ("9", "am", local(2026, 11, 26, 9)),
        ("9", "night", local(2026, 11, 26, 21)),
        # The part of the day said before settles what fits it and gives way to what does not.
        ("19:00", "am", local(2026, 11, 26, 19)),
        ("12", "am", local(2026, 11, 26, 12)),
        ("9 de la mañana", "pm", local(2026, 11, 26, 9)),
        # A whole date, typed instead, is read as such.
        ("viernes 18:30", "pm", local(2026, 11, 27, 18, 30)),
    ],
)
def test_the_hour_answered_completes_the_day(
    answer: str, period: str | None, expected: datetime
) -> None:
    assert read_when(answer, NOW, SANTIAGO, day=THURSDAY, period=period) == expected


def test_an_hour_answered_for_a_day_gone_by_or_a_new_day() -> None:
    today = date(2026, 11, 24)
    assert read_when("10:00", NOW, SANTIAGO, day=today) == Past(local(2026, 11, 24, 10))
    assert read_when("20:00", NOW, SANTIAGO, day=today) == local(2026, 11, 24, 20)
    assert read_when("el viernes", NOW, SANTIAGO, day=THURSDAY, period="pm") == DayWithoutTime(
        date(2026, 11, 27), None
    )
    for wrong in ("a las 25", "pronto", "en la tarde", "19:60", "🙂"):
        assert read_when(wrong, NOW, SANTIAGO, day=THURSDAY, period="pm") is None, wrong


def test_the_hour_answered_on_a_clock_change_day() -> None:
    # Chile springs forward at 2026-09-06 00:00 (to 01:00): 00:30 does not exist that night.
    saturday_noon = datetime(2026, 9, 5, 12, tzinfo=SANTIAGO).astimezone(UTC)
    assert read_when("domingo", saturday_noon, SANTIAGO) == DayWithoutTime(date(2026, 9, 6), None)
    moment = read_when("00:30", saturday_noon, SANTIAGO, day=date(2026, 9, 6))
    assert isinstance(moment, datetime)
    assert moment.astimezone(SANTIAGO).strftime("%Y-%m-%d %H:%M %z") == "2026-09-06 01:30 -0300"
    moment = read_when("19:00", saturday_noon, SANTIAGO, day=date(2026, 9, 6))
    assert moment == datetime(2026, 9, 6, 22, tzinfo=UTC)


def test_the_day_and_hour_are_the_barrios_zone() -> None:
    # In winter Magallanes (UTC-3 all year) is an hour ahead of Santiago (UTC-4): at this
    # instant it is Monday 23:30 in Santiago and already Tuesday 00:30 in Punta Arenas.
    winter_night = datetime(2026, 6, 16, 3, 30, tzinfo=UTC)
    assert read_when("hoy", winter_night, SANTIAGO) == DayWithoutTime(date(2026, 6, 15), None)
    assert read_when("hoy", winter_night, PUNTA_ARENAS) == DayWithoutTime(date(2026, 6, 16), None)
    assert read_when("ayer", winter_night, PUNTA_ARENAS) == Past(date(2026, 6, 15))
    moment = read_when("19:00", winter_night, PUNTA_ARENAS, day=date(2026, 6, 16))
    assert moment == datetime(2026, 6, 16, 22, tzinfo=UTC)
    assert read_when("19:00", winter_night, SANTIAGO, day=date(2026, 6, 16)) == datetime(
        2026, 6, 16, 23, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hoy", date(2026, 11, 24)),
        ("15/12", date(2026, 12, 15)),
        ("15 de diciembre", date(2026, 12, 15)),
        ("el jueves", THURSDAY),
        ("mañana en la tarde", date(2026, 11, 25)),
        ("ayer", date(2026, 11, 23)),  # an opening day may be past: the caller decides
        ("1/11", date(2027, 11, 1)),
        ("31/11", NoSuchDay(31, 11, None)),
        ("29/02", NoSuchDay(29, 2, 2027)),
        ("pronto", None),
        ("15/12 18:00", None),  # only the day would be kept
    ],
)
def test_a_day_alone_for_a_funding_call(text: str, expected: date | NoSuchDay | None) -> None:
    assert read_day(text, NOW, SANTIAGO) == expected
