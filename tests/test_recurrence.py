"""Recurring meetings: every accepted phrase, the refusals, occurrences and Chile's DST nights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.recurrence import (
    Occurrence,
    Rule,
    RuleProblem,
    describe_rule,
    instant,
    occurrences,
    parse_rule,
)
from handlers.when import describe_when

SANTIAGO = ZoneInfo("America/Santiago")
PUNTA_ARENAS = ZoneInfo("America/Punta_Arenas")
# Tuesday 24 November 2026, 15:00 in Santiago (summer time, UTC-3).
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=SANTIAGO).astimezone(UTC)


def rule(text: str, now: datetime = NOW, zone: ZoneInfo = SANTIAGO) -> Rule:
    parsed = parse_rule(text, now, zone)
    assert isinstance(parsed, Rule), parsed
    return parsed


def at(zone: ZoneInfo, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def test_fixed_now_is_a_tuesday_afternoon() -> None:
    assert NOW.astimezone(SANTIAGO).strftime("%A %H:%M") == "Tuesday 15:00"


@pytest.mark.parametrize(
    ("text", "rrule", "start", "words"),
    [
        # The phrases from the brief.
        ("todos los jueves a las 19:00", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("cada jueves 19:00", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("los jueves a las 7 de la tarde", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("el primer martes de cada mes a las 19:00", "FREQ=MONTHLY;BYDAY=+1TU", datetime(2026, 12, 1, 19), "el primer martes de cada mes a las 19:00"),
        ("el último viernes de cada mes 18:30", "FREQ=MONTHLY;BYDAY=-1FR", datetime(2026, 11, 27, 18, 30), "el último viernes de cada mes a las 18:30"),
        ("el segundo y cuarto miércoles de cada mes a las 19", "FREQ=MONTHLY;BYDAY=+2WE,+4WE", datetime(2026, 11, 25, 19), "el segundo y cuarto miércoles de cada mes a las 19:00"),
        ("cada 15 días, lunes 18:30", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada dos semanas, los lunes a las 18:30"),
        ("cada dos semanas el lunes 18:30", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada dos semanas, los lunes a las 18:30"),
        ("el 31 de cada mes a las 19:00", "FREQ=MONTHLY;BYMONTHDAY=31", datetime(2026, 12, 31, 19), "el día 31 de cada mes a las 19:00"),
        ("el 15 de cada mes 19:00", "FREQ=MONTHLY;BYMONTHDAY=15", datetime(2026, 12, 15, 19), "el día 15 de cada mes a las 19:00"),
        # Case, accents, commas and spacing do not matter.
        ("TODOS LOS JUEVES A LAS 19:00", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("  Los Jueves,  a las 7 de la tarde. ", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("el ultimo viernes de cada mes, 18.30", "FREQ=MONTHLY;BYDAY=-1FR", datetime(2026, 11, 27, 18, 30), "el último viernes de cada mes a las 18:30"),
        ("el segundo y cuarto miercoles de cada mes a las 19", "FREQ=MONTHLY;BYDAY=+2WE,+4WE", datetime(2026, 11, 25, 19), "el segundo y cuarto miércoles de cada mes a las 19:00"),
        ("cada 15 dias lunes 18:30", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada dos semanas, los lunes a las 18:30"),
        # Other ways of saying weekly.
        ("todos los días lunes a las 19:00", "FREQ=WEEKLY;BYDAY=MO", datetime(2026, 11, 30, 19), "todos los lunes a las 19:00"),
        ("los días jueves 19 hrs", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("cada día jueves 19:00", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("sábados 10 am", "FREQ=WEEKLY;BYDAY=SA", datetime(2026, 11, 28, 10), "todos los sábados a las 10:00"),
        ("todos los domingos a mediodía", "FREQ=WEEKLY;BYDAY=SU", datetime(2026, 11, 29, 12), "todos los domingos a las 12:00"),
        ("todas las semanas, los jueves a las 19:00", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("cada semana el jueves 19:00", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("cada 7 días, el jueves 19:00", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("todos los martes y jueves a las 19:00", "FREQ=WEEKLY;BYDAY=TU,TH", datetime(2026, 11, 24, 19), "todos los martes y jueves a las 19:00"),
        ("los lunes, miércoles y viernes 19:00", "FREQ=WEEKLY;BYDAY=MO,WE,FR", datetime(2026, 11, 25, 19), "todos los lunes, miércoles y viernes a las 19:00"),
        ("los jueves y los lunes 19:00", "FREQ=WEEKLY;BYDAY=MO,TH", datetime(2026, 11, 26, 19), "todos los lunes y jueves a las 19:00"),
        # Every few weeks.
        ("cada 2 semanas, lunes 18:30", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada dos semanas, los lunes a las 18:30"),
        ("cada quince días el lunes 18:30", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada dos semanas, los lunes a las 18:30"),
        ("cada 14 días, lunes 18:30", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada dos semanas, los lunes a las 18:30"),
        ("los lunes por medio a las 18:30", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada dos semanas, los lunes a las 18:30"),
        ("semana por medio, los lunes 18:30", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada dos semanas, los lunes a las 18:30"),
        ("cada 3 semanas los martes y jueves 19:00", "FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,TH", datetime(2026, 11, 24, 19), "cada tres semanas, los martes y jueves a las 19:00"),
        ("cada 21 días, lunes 18:30", "FREQ=WEEKLY;INTERVAL=3;BYDAY=MO", datetime(2026, 11, 30, 18, 30), "cada tres semanas, los lunes a las 18:30"),
        # Monthly.
        ("el primer y tercer martes de cada mes 19:00", "FREQ=MONTHLY;BYDAY=+1TU,+3TU", datetime(2026, 12, 1, 19), "el primer y tercer martes de cada mes a las 19:00"),
        ("el último y penúltimo viernes de cada mes 19:00", "FREQ=MONTHLY;BYDAY=-2FR,-1FR", datetime(2026, 11, 27, 19), "el penúltimo y último viernes de cada mes a las 19:00"),
        ("el cuarto jueves de cada mes a las 9 y cuarto", "FREQ=MONTHLY;BYDAY=+4TH", datetime(2026, 11, 26, 9, 15), "el cuarto jueves de cada mes a las 09:15"),
        ("el tercer sábado de todos los meses a las 10", "FREQ=MONTHLY;BYDAY=+3SA", datetime(2026, 12, 19, 10), "el tercer sábado de cada mes a las 10:00"),
        ("el día 15 de cada mes a las 7 de la tarde", "FREQ=MONTHLY;BYMONTHDAY=15", datetime(2026, 12, 15, 19), "el día 15 de cada mes a las 19:00"),
        ("todos los 5 de cada mes a la 1 de la tarde", "FREQ=MONTHLY;BYMONTHDAY=5", datetime(2026, 12, 5, 13), "el día 5 de cada mes a la 13:00"),
        ("todos los meses el día 30 a las 19:00", "FREQ=MONTHLY;BYMONTHDAY=30", datetime(2026, 11, 30, 19), "el día 30 de cada mes a las 19:00"),
        ("todos los días 15 a las 19:00", "FREQ=MONTHLY;BYMONTHDAY=15", datetime(2026, 12, 15, 19), "el día 15 de cada mes a las 19:00"),
        ("cada día 15, 19:00", "FREQ=MONTHLY;BYMONTHDAY=15", datetime(2026, 12, 15, 19), "el día 15 de cada mes a las 19:00"),
        ("los días 15 a las 19:00", "FREQ=MONTHLY;BYMONTHDAY=15", datetime(2026, 12, 15, 19), "el día 15 de cada mes a las 19:00"),
        ("todos los días 15 de cada mes a las 19:00", "FREQ=MONTHLY;BYMONTHDAY=15", datetime(2026, 12, 15, 19), "el día 15 de cada mes a las 19:00"),
        ("el 24 de cada mes a las 16:00", "FREQ=MONTHLY;BYMONTHDAY=24", datetime(2026, 11, 24, 16), "el día 24 de cada mes a las 16:00"),
        # The hour as `when` reads it: a bare 1-7 is afternoon, a leading zero the 24-hour clock.
        ("todos los jueves a las 7", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("todos los jueves 7:30", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19, 30), "todos los jueves a las 19:30"),
        ("todos los jueves a las 07:00", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 7), "todos los jueves a las 07:00"),
        ("todos los jueves a las 8 de la mañana", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 8), "todos los jueves a las 08:00"),
        ("todos los jueves 8 pm", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 20), "todos los jueves a las 20:00"),
        ("todos los jueves 19", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19), "todos los jueves a las 19:00"),
        ("todos los jueves 00:30", "FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 0, 30), "todos los jueves a las 00:30"),
    ],
)  # fmt: skip
def test_understood(text: str, rrule: str, start: datetime, words: str) -> None:
    parsed = rule(text)
    assert (parsed.rrule, parsed.start) == (rrule, start)
    assert (parsed.hour, parsed.minute) == (start.hour, start.minute)
    assert describe_rule(parsed) == words
    # What the bot says back reads as the same rule.
    assert parse_rule(words, NOW, SANTIAGO) == parsed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # Not understood: gibberish, emoji, two times, contradictions, unsupported shapes.
        ("", RuleProblem.NOT_UNDERSTOOD),
        ("   ", RuleProblem.NOT_UNDERSTOOD),
        ("asdf qwerty", RuleProblem.NOT_UNDERSTOOD),
        ("🎉", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves 19:00 🎉", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves a las 19:00 y 20:00", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves 19:00 20:00", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves a las 7 a las 8", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves jueves 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves y jueves 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("los jueves 19:00 y los viernes", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves 19:00 mañana", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves 28/11 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves a las 12 am", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves a medianoche", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves 13 de la mañana", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves 19:60", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves 25:00", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves 19:00 con once", RuleProblem.NOT_UNDERSTOOD),
        ("los martes de cada mes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("el primer martes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("el primer martes y jueves de cada mes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("el primer y primer martes de cada mes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("el quinto martes de cada mes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("el primer martes de cada mes, cada dos semanas 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("cada dos semanas los lunes por medio 18:30", RuleProblem.NOT_UNDERSTOOD),
        ("cada 9 semanas los lunes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("cada 0 semanas los lunes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("cada dos meses el primer martes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("el 15 de cada mes los jueves 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("el 15 de septiembre de cada año 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("de lunes a viernes 19:00", RuleProblem.NOT_UNDERSTOOD),
        ("todos los jueves que viene 19:00", RuleProblem.NOT_UNDERSTOOD),
        # One day, not a repetition.
        ("el jueves a las 19:00", RuleProblem.NOT_REPEATING),
        ("jueves 19:00", RuleProblem.NOT_REPEATING),
        ("mañana 19:00", RuleProblem.NOT_REPEATING),
        ("28/11 19:00", RuleProblem.NOT_REPEATING),
        ("el día 15 a las 19", RuleProblem.NOT_REPEATING),
        ("días 15 a las 19", RuleProblem.NOT_REPEATING),
        ("a las 19:00", RuleProblem.NOT_REPEATING),
        # No time: "¿A qué hora?"
        ("todos los jueves", RuleProblem.NO_TIME),
        ("cada jueves en la tarde", RuleProblem.NO_TIME),
        ("el primer martes de cada mes", RuleProblem.NO_TIME),
        ("el 15 de cada mes", RuleProblem.NO_TIME),
        ("cada dos semanas, el lunes", RuleProblem.NO_TIME),
        # No day: "¿Qué día?"
        ("cada dos semanas a las 19:00", RuleProblem.NO_DAY),
        ("cada 15 días 18:30", RuleProblem.NO_DAY),
        ("cada semana a las 19", RuleProblem.NO_DAY),
        ("cada mes a las 19", RuleProblem.NO_DAY),
        ("todos los meses a las 19:00", RuleProblem.NO_DAY),
        # Days that never exist.
        ("el 32 de cada mes a las 19:00", RuleProblem.NO_SUCH_DAY),
        ("el 0 de cada mes a las 19:00", RuleProblem.NO_SUCH_DAY),
        ("el día 40 de cada mes 19:00", RuleProblem.NO_SUCH_DAY),
        # Not a whole number of weeks.
        ("cada 10 días lunes", RuleProblem.NOT_WHOLE_WEEKS),
        ("cada 10 días, lunes 18:30", RuleProblem.NOT_WHOLE_WEEKS),
        ("cada 3 días a las 19:00", RuleProblem.NOT_WHOLE_WEEKS),
        ("cada 30 días el lunes 19:00", RuleProblem.NOT_WHOLE_WEEKS),
        # Daily meetings are refused on purpose.
        ("todos los días a las 9", RuleProblem.DAILY),
        ("cada día 19:00", RuleProblem.DAILY),
        ("cada 1 día a las 19", RuleProblem.DAILY),
        ("a diario a las 19:00", RuleProblem.DAILY),
        ("todos los días", RuleProblem.DAILY),
        ("todos los días y los jueves 19:00", RuleProblem.NOT_UNDERSTOOD),
    ],
)
def test_refused(text: str, problem: RuleProblem) -> None:
    assert parse_rule(text, NOW, SANTIAGO) == problem


@pytest.mark.parametrize(
    ("now_local", "expected"),
    [
        (datetime(2026, 11, 26, 18, 0), datetime(2026, 11, 26, 19)),  # Thursday, still ahead
        (datetime(2026, 11, 26, 18, 59), datetime(2026, 11, 26, 19)),
        (datetime(2026, 11, 26, 19, 0), datetime(2026, 12, 3, 19)),  # strictly after now
        (datetime(2026, 11, 26, 20, 0), datetime(2026, 12, 3, 19)),  # Thursday, already past
        (datetime(2026, 11, 27, 9, 0), datetime(2026, 12, 3, 19)),
    ],
)
def test_first_meeting_is_strictly_after_now(now_local: datetime, expected: datetime) -> None:
    now = now_local.replace(tzinfo=SANTIAGO).astimezone(UTC)
    assert rule("todos los jueves a las 19:00", now).start == expected


def test_every_other_week_starts_on_the_next_matching_day() -> None:
    # Asked on a Wednesday: the next Monday, not the one after (dateutil would count weeks
    # from the week of the Wednesday).
    wednesday = at(SANTIAGO, 2026, 11, 25, 12)
    parsed = rule("cada dos semanas el lunes 18:30", wednesday)
    found = occurrences(parsed, SANTIAGO, wednesday, at(SANTIAGO, 2027, 1, 12))
    assert [o.local for o in found] == [
        datetime(2026, 11, 30, 18, 30),
        datetime(2026, 12, 14, 18, 30),
        datetime(2026, 12, 28, 18, 30),
        datetime(2027, 1, 11, 18, 30),
    ]


def test_now_in_another_zone_is_the_same_instant() -> None:
    assert rule("todos los jueves a las 19:00", NOW.astimezone(ZoneInfo("Asia/Tokyo"))) == rule(
        "todos los jueves a las 19:00"
    )


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_rule("todos los jueves 19:00", datetime(2026, 11, 24, 15), SANTIAGO)


@pytest.mark.parametrize(
    ("text", "skips"),
    [
        ("el 31 de cada mes a las 19:00", True),
        ("el 30 de cada mes a las 19:00", True),
        ("el 29 de cada mes a las 19:00", True),
        ("el 28 de cada mes a las 19:00", False),
        ("el 1 de cada mes a las 19:00", False),
        ("el último viernes de cada mes 18:30", False),
        ("todos los jueves 19:00", False),
    ],
)
def test_skips_short_months(text: str, skips: bool) -> None:
    assert rule(text).skips_short_months is skips


def test_day_31_skips_the_months_without_it() -> None:
    found = occurrences(
        rule("el 31 de cada mes a las 19:00"), SANTIAGO, NOW, at(SANTIAGO, 2027, 9, 1)
    )
    assert [o.local.date().isoformat() for o in found] == [
        "2026-12-31", "2027-01-31", "2027-03-31", "2027-05-31", "2027-07-31", "2027-08-31",
    ]  # fmt: skip


def test_next_three_meetings_in_words() -> None:
    parsed = rule("todos los jueves a las 19:00")
    upcoming = occurrences(parsed, SANTIAGO, NOW, NOW + timedelta(days=60), limit=3)
    assert [describe_when(o.at, SANTIAGO, NOW) for o in upcoming] == [
        "jueves 26 de noviembre a las 19:00",
        "jueves 3 de diciembre a las 19:00",
        "jueves 10 de diciembre a las 19:00",
    ]


def test_occurrences_are_bounded_and_in_order() -> None:
    parsed = rule("todos los jueves a las 19:00")
    until = at(SANTIAGO, 2026, 12, 17, 19)  # an occurrence: `until` is inclusive
    found = occurrences(parsed, SANTIAGO, NOW, until)
    assert found == [
        Occurrence(datetime(2026, 11, 26, 19), at(SANTIAGO, 2026, 11, 26, 19)),
        Occurrence(datetime(2026, 12, 3, 19), at(SANTIAGO, 2026, 12, 3, 19)),
        Occurrence(datetime(2026, 12, 10, 19), at(SANTIAGO, 2026, 12, 10, 19)),
        Occurrence(datetime(2026, 12, 17, 19), at(SANTIAGO, 2026, 12, 17, 19)),
    ]
    assert all(o.at.tzinfo is UTC and o.local.tzinfo is None for o in found)
    # `after` is exclusive.
    assert occurrences(parsed, SANTIAGO, found[0].at, until) == found[1:]
    assert occurrences(parsed, SANTIAGO, until, until + timedelta(days=6)) == []
    assert occurrences(parsed, SANTIAGO, until, NOW) == []
    assert occurrences(parsed, SANTIAGO, NOW, until, limit=0) == []
    assert occurrences(parsed, SANTIAGO, NOW, until, limit=2) == found[:2]
    # Nothing before the rule's first meeting, however early `after` is.
    assert occurrences(parsed, SANTIAGO, NOW - timedelta(days=365), until) == found


def test_occurrences_over_years_stay_bounded() -> None:
    parsed = rule("todos los jueves a las 19:00")
    found = occurrences(parsed, SANTIAGO, NOW, NOW + timedelta(days=10 * 365))
    assert len(found) == 522
    assert all(o.local.hour == 19 and o.local.weekday() == 3 for o in found)
    assert all(o.at.astimezone(SANTIAGO).hour == 19 for o in found)  # across every DST change


def test_exclude_by_local_wall_time_or_by_instant() -> None:
    parsed = rule("todos los jueves a las 19:00")
    until = at(SANTIAGO, 2026, 12, 17, 19)
    every = occurrences(parsed, SANTIAGO, NOW, until)
    by_local = occurrences(parsed, SANTIAGO, NOW, until, exclude=[datetime(2026, 12, 3, 19)])
    by_instant = occurrences(parsed, SANTIAGO, NOW, until, exclude={every[1].at})
    in_tokyo = occurrences(
        parsed, SANTIAGO, NOW, until, exclude=[every[1].at.astimezone(ZoneInfo("Asia/Tokyo"))]
    )
    assert by_local == by_instant == in_tokyo == [every[0], every[2], every[3]]
    # A moment that is no occurrence excludes nothing; excluded ones do not count for `limit`.
    assert occurrences(parsed, SANTIAGO, NOW, until, exclude=[datetime(2026, 12, 3, 18)]) == every
    assert (
        occurrences(parsed, SANTIAGO, NOW, until, exclude=[every[0].local], limit=2) == every[1:3]
    )


def test_occurrences_reject_naive_bounds() -> None:
    parsed = rule("todos los jueves a las 19:00")
    with pytest.raises(ValueError, match="aware"):
        occurrences(parsed, SANTIAGO, datetime(2026, 11, 24), NOW + timedelta(days=7))
    with pytest.raises(ValueError, match="aware"):
        occurrences(parsed, SANTIAGO, NOW, datetime(2026, 12, 24))


# Chile falls back at 2026-04-05 00:00 (to 2026-04-04 23:00) and springs forward at
# 2026-09-06 00:00 (to 01:00); this test checks those dates against the installed tzdata.
def test_dst_transitions_are_where_the_tests_expect_them() -> None:
    before, after = datetime(2026, 4, 5, 2, 59, tzinfo=UTC), datetime(2026, 4, 5, 3, tzinfo=UTC)
    assert before.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-3)
    assert after.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-4)
    assert after.astimezone(SANTIAGO).replace(tzinfo=None) == datetime(2026, 4, 4, 23)
    before, after = datetime(2026, 9, 6, 3, 59, tzinfo=UTC), datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert before.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-4)
    assert after.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-3)
    assert after.astimezone(SANTIAGO).replace(tzinfo=None) == datetime(2026, 9, 6, 1)


def test_repeated_hour_on_fall_back_happens_once_the_first_time() -> None:
    now = at(SANTIAGO, 2026, 3, 20, 12)
    parsed = rule("todos los sábados a las 23:30", now)
    found = occurrences(parsed, SANTIAGO, now, datetime(2026, 4, 19, 4, tzinfo=UTC))
    assert [(o.local, o.at) for o in found] == [
        (datetime(2026, 3, 21, 23, 30), datetime(2026, 3, 22, 2, 30, tzinfo=UTC)),
        (datetime(2026, 3, 28, 23, 30), datetime(2026, 3, 29, 2, 30, tzinfo=UTC)),
        # 23:30 at UTC-3, before the clocks go back; not again at 03:30 UTC.
        (datetime(2026, 4, 4, 23, 30), datetime(2026, 4, 5, 2, 30, tzinfo=UTC)),
        (datetime(2026, 4, 11, 23, 30), datetime(2026, 4, 12, 3, 30, tzinfo=UTC)),
        (datetime(2026, 4, 18, 23, 30), datetime(2026, 4, 19, 3, 30, tzinfo=UTC)),
    ]


def test_time_skipped_by_spring_forward_moves_to_the_first_valid_minute() -> None:
    now = at(SANTIAGO, 2026, 8, 25, 12)
    parsed = rule("todos los domingos a las 00:30", now)
    found = occurrences(parsed, SANTIAGO, now, datetime(2026, 9, 14, tzinfo=UTC))
    assert [(o.local, o.at) for o in found] == [
        (datetime(2026, 8, 30, 0, 30), datetime(2026, 8, 30, 4, 30, tzinfo=UTC)),
        # 00:30 does not exist that night: the meeting is at 01:00 local, still named 00:30.
        (datetime(2026, 9, 6, 0, 30), datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
        (datetime(2026, 9, 13, 0, 30), datetime(2026, 9, 13, 3, 30, tzinfo=UTC)),
    ]
    assert describe_when(found[1].at, SANTIAGO) == "domingo 6 de septiembre a la 01:00"
    # Excluding it by either name works, as for any other occurrence.
    for name in (found[1].local, found[1].at):
        assert occurrences(parsed, SANTIAGO, now, found[2].at, exclude=[name]) == [
            found[0],
            found[2],
        ]


def test_first_meeting_in_the_skipped_hour_is_kept() -> None:
    now = at(SANTIAGO, 2026, 9, 1, 12)
    parsed = rule("cada domingo 00:30", now)
    assert parsed.start == datetime(2026, 9, 6, 0, 30)
    assert instant(parsed.start, SANTIAGO) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    # Asked inside the jump's aftermath, at 01:10 local, that meeting (01:00) is past.
    after_jump = datetime(2026, 9, 6, 4, 10, tzinfo=UTC)
    assert rule("cada domingo 00:30", after_jump).start == datetime(2026, 9, 13, 0, 30)


def test_punta_arenas_keeps_one_utc_hour_all_year() -> None:
    # No clock change there: UTC-3 on both Chilean transition nights.
    for moment in ("2026-04-04T12:00", "2026-04-05T12:00", "2026-09-05T12:00", "2026-09-06T12:00"):
        local = datetime.fromisoformat(moment).replace(tzinfo=PUNTA_ARENAS)
        assert local.utcoffset() == timedelta(hours=-3)
    now = at(PUNTA_ARENAS, 2026, 3, 20, 12)
    parsed = rule("todos los sábados a las 23:30", now, PUNTA_ARENAS)
    found = occurrences(parsed, PUNTA_ARENAS, now, datetime(2026, 9, 30, tzinfo=UTC))
    assert len(found) == 28
    assert {(o.at.hour, o.at.minute, o.at.weekday()) for o in found} == {(2, 30, 6)}
    assert datetime(2026, 4, 5, 2, 30, tzinfo=UTC) in [o.at for o in found]
    assert datetime(2026, 9, 6, 2, 30, tzinfo=UTC) in [o.at for o in found]
    # The same rule in Santiago moves by an hour in UTC across the same nights.
    in_santiago = occurrences(parsed, SANTIAGO, now, datetime(2026, 9, 30, tzinfo=UTC))
    assert {o.at.hour for o in in_santiago} == {2, 3}


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 11, 26, 19), datetime(2026, 11, 26, 22, tzinfo=UTC)),
        (datetime(2026, 7, 2, 19), datetime(2026, 7, 2, 23, tzinfo=UTC)),
        (datetime(2026, 4, 4, 23, 30), datetime(2026, 4, 5, 2, 30, tzinfo=UTC)),
        (datetime(2026, 9, 6, 0, 0), datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
        (datetime(2026, 9, 6, 0, 59), datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
        (datetime(2026, 9, 6, 1, 0), datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
        (datetime(2026, 9, 5, 23, 59), datetime(2026, 9, 6, 3, 59, tzinfo=UTC)),
    ],
)
def test_instant(local: datetime, expected: datetime) -> None:
    assert instant(local, SANTIAGO) == expected


def test_instant_rejects_aware_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        instant(datetime(2026, 11, 26, 19, tzinfo=SANTIAGO), SANTIAGO)


def test_rule_rebuilds_from_what_is_stored() -> None:
    parsed = rule("el segundo y cuarto miércoles de cada mes a las 19")
    rebuilt = Rule(parsed.rrule, datetime.fromisoformat(parsed.start.isoformat()))
    assert rebuilt == parsed
    assert describe_rule(rebuilt) == describe_rule(parsed)


@pytest.mark.parametrize(
    ("rrule", "start", "message"),
    [
        ("FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19, tzinfo=SANTIAGO), "naive"),
        ("FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 26, 19, 0, 30), "whole minute"),
        ("FREQ=WEEKLY;BYDAY=TH", datetime(2026, 11, 25, 19), "not an occurrence"),
        ("FREQ=MONTHLY;BYDAY=+1TU", datetime(2026, 12, 8, 19), "not an occurrence"),
        ("FREQ=DAILY", datetime(2026, 11, 26, 19), "unsupported"),
        ("FREQ=WEEKLY", datetime(2026, 11, 26, 19), "unsupported"),
        ("FREQ=WEEKLY;BYDAY=TH;COUNT=3", datetime(2026, 11, 26, 19), "unsupported"),
        ("FREQ=WEEKLY;BYDAY=+1TH", datetime(2026, 11, 26, 19), "unsupported"),
        ("FREQ=WEEKLY;INTERVAL=9;BYDAY=TH", datetime(2026, 11, 26, 19), "unsupported"),
        ("FREQ=MONTHLY;BYDAY=+5TH", datetime(2026, 12, 31, 19), "unsupported"),
        ("FREQ=MONTHLY;BYDAY=+1TU,+1TH", datetime(2026, 12, 1, 19), "unsupported"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", datetime(2026, 12, 1, 19), "unsupported"),
        ("FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=1", datetime(2026, 12, 1, 19), "unsupported"),
        ("FREQ=WEEKLY;BYDAY=TH,MO", datetime(2026, 11, 26, 19), "canonical"),
        ("FREQ=WEEKLY;BYDAY=TH,TH", datetime(2026, 11, 26, 19), "canonical"),
        ("FREQ=WEEKLY;INTERVAL=1;BYDAY=TH", datetime(2026, 11, 26, 19), "canonical"),
        ("BYDAY=TH;FREQ=WEEKLY", datetime(2026, 11, 26, 19), "canonical"),
        ("freq=weekly;byday=th", datetime(2026, 11, 26, 19), "unsupported"),
        ("", datetime(2026, 11, 26, 19), "RRULE"),
    ],
)
def test_rule_accepts_only_its_own_shapes(rrule: str, start: datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rule(rrule, start)
