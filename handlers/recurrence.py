"""Recurring barrio meetings as people type them ("todos los jueves a las 19:00"), said back in
Spanish words, and their dates computed with dateutil's rrule.

`parse_rule(text, now, zone)` gives a `Rule` (an RFC 5545 RRULE plus the local wall time of the
first meeting) or the `RuleProblem` to tell the person; `occurrences` lists the meetings between
two instants; `describe_rule` says the rule back in a form `parse_rule` reads again.

Reading rules (a refusal is cheaper than a meeting at the wrong hour):
- The hour is read as `handlers.when` reads it: a bare hour 1–7 is afternoon, "de la tarde"/"pm"
  add 12, a leading zero or "hrs" means the 24-hour clock.
- A repetition must be said: "todos los jueves", "cada jueves", "los jueves", "los días jueves"
  are weekly; "el jueves" or "jueves" alone is one day (`NOT_REPEATING`).
- "cada dos semanas", "cada 15 días" (a fortnight, as people say it) and "semana por medio"
  need a weekday; days that are not whole weeks ("cada 10 días") are refused.
- Monthly: "el primer/segundo/tercer/cuarto/último/penúltimo martes de cada mes", "el 15 de
  cada mes", "todos los días 15". Days 29–31 skip the months that lack them
  (`Rule.skips_short_months`). Yearly rules and intervals of months are not read.
- Daily meetings ("todos los días") are refused on purpose: in a barrio they are far likelier a
  misreading than a real plan.

Time rules: an occurrence is named by its local wall time, which is its stable identity (for
EXDATE and RECURRENCE-ID). A wall time repeated when clocks go back happens once, the first
time (fold=0); one skipped when clocks jump forward moves to the first valid minute after the
jump, so the meeting never disappears.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import islice
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from handlers.when import _WEEKDAY_WORDS, WEEKDAYS, _hour_of_day, _Reader, _tokenize


class RuleProblem(StrEnum):
    """Why a text was not taken as a recurring meeting, so the bot can ask the right question."""

    NOT_UNDERSTOOD = "not_understood"  # unknown words, two times, contradictions
    NOT_REPEATING = "not_repeating"  # one day: "el jueves 19:00", "mañana 19:00", "el día 15"
    NO_TIME = "no_time"  # "todos los jueves": ¿a qué hora?
    NO_DAY = "no_day"  # "cada dos semanas a las 19:00", "cada mes a las 19": ¿qué día?
    NO_SUCH_DAY = "no_such_day"  # "el 32 de cada mes", "el 0 de cada mes"
    NOT_WHOLE_WEEKS = "not_whole_weeks"  # "cada 10 días, lunes"
    DAILY = "daily"  # "todos los días a las 9"


_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_PLURALS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábados", "domingos")
_DAY_WORDS = _WEEKDAY_WORDS | {"sabados": 5, "domingos": 6}
_ORDINAL_WORDS = {
    "primer": 1, "primero": 1, "segundo": 2, "tercer": 3, "tercero": 3, "cuarto": 4,
    "ultimo": -1, "penultimo": -2,
}  # fmt: skip
_ORDINAL_NAMES = {
    1: "primer",
    2: "segundo",
    3: "tercer",
    4: "cuarto",
    -1: "último",
    -2: "penúltimo",
}
_NUMBER_WORDS = {
    "un": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "catorce": 14, "quince": 15, "veintiun": 21, "veintiuno": 21, "veintiocho": 28,
}  # fmt: skip
_NUMBER_NAMES = ("", "una", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho")
# "Cada 15 días" is how people say every other week; other day counts must be whole weeks.
_DAYS_AS_WEEKS = {7: 1, 14: 2, 15: 2, 21: 3, 28: 4}
MAX_INTERVAL_WEEKS = len(_NUMBER_NAMES) - 1
_MONTHLY_SUFFIXES = (("de", "cada", "mes"), ("de", "todos", "los", "meses"))


class _Shape(NamedTuple):
    """The few RRULE shapes this module writes; anything else is refused."""

    freq: str  # "WEEKLY" or "MONTHLY"
    interval: int
    days: tuple[tuple[int | None, int], ...]  # (ordinal or None, weekday 0=Monday)
    month_day: int | None

    def rrule(self) -> str:
        parts = [f"FREQ={self.freq}"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.days:
            codes = (f"{'' if n is None else f'{n:+d}'}{_CODES[day]}" for n, day in self.days)
            parts.append(f"BYDAY={','.join(codes)}")
        if self.month_day is not None:
            parts.append(f"BYMONTHDAY={self.month_day}")
        return ";".join(parts)


def _ordinal_key(day: tuple[int | None, int]) -> tuple[int, int]:
    # Counted from the end ("penúltimo y último") after those counted from the start.
    ordinal = day[0] or 0
    return (ordinal if ordinal >= 0 else 10 + ordinal, day[1])


def _shape(
    freq: str, interval: int, days: list[tuple[int | None, int]], month_day: int | None
) -> _Shape:
    return _Shape(freq, interval, tuple(sorted(days, key=_ordinal_key)), month_day)


_BYDAY = re.compile(r"([+-][12]|\+[34])?(MO|TU|WE|TH|FR|SA|SU)")


def _parse_shape(rrule: str) -> _Shape:
    """The shape of one of our own RRULE values; a ValueError for anything else."""
    try:
        parts = dict(part.split("=", 1) for part in rrule.split(";"))
    except ValueError:
        raise ValueError(f"not an RRULE value: {rrule!r}") from None
    freq = parts.pop("FREQ", "")
    interval = parts.pop("INTERVAL", "1")
    days: list[tuple[int | None, int]] = []
    for code in filter(None, parts.pop("BYDAY", "").split(",")):
        match = _BYDAY.fullmatch(code)
        if match is None:
            raise ValueError(f"unsupported BYDAY {code!r}")
        days.append((int(match[1]) if match[1] else None, _CODES.index(match[2])))
    month_day = parts.pop("BYMONTHDAY", None)
    if parts or not interval.isdigit() or (month_day is not None and not month_day.isdigit()):
        raise ValueError(f"unsupported RRULE {rrule!r}")
    shape = _shape(freq, int(interval), days, None if month_day is None else int(month_day))
    ordinals = {n is not None for n, _ in shape.days}
    if freq == "WEEKLY":
        valid = ordinals == {False} and month_day is None
        valid = valid and 1 <= shape.interval <= MAX_INTERVAL_WEEKS
    elif freq == "MONTHLY" and month_day is None:
        valid = ordinals == {True} and len({day for _, day in shape.days}) == 1
    else:
        day = shape.month_day
        valid = freq == "MONTHLY" and not shape.days and day is not None and 1 <= day <= 31
    if not valid or (freq == "MONTHLY" and shape.interval != 1):
        raise ValueError(f"unsupported RRULE {rrule!r}")
    if shape.rrule() != rrule or len(set(shape.days)) != len(shape.days):
        raise ValueError(f"RRULE not in canonical form: {rrule!r} (expected {shape.rrule()!r})")
    return shape


def _series(rrule: str, start: datetime) -> Any:  # dateutil ships no type hints
    return rrulestr(rrule, dtstart=start)


@dataclass(frozen=True)
class Rule:
    """A recurring meeting: store `rrule` and `start` (with the barrio's zone) to rebuild it.

    `start` is the naive local wall time of the first meeting and must be an occurrence of
    `rrule`; its hour and minute are those of every meeting.
    """

    rrule: str
    start: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None:
            raise ValueError("start must be a naive local wall time")
        if self.start.second or self.start.microsecond:
            raise ValueError("start must be on a whole minute")
        _parse_shape(self.rrule)
        if next(iter(_series(self.rrule, self.start)), None) != self.start:
            raise ValueError(f"start {self.start} is not an occurrence of {self.rrule}")

    @property
    def hour(self) -> int:
        return self.start.hour

    @property
    def minute(self) -> int:
        return self.start.minute

    @property
    def skips_short_months(self) -> bool:
        """True for "el 29/30/31 de cada mes": months without that day have no meeting."""
        month_day = _parse_shape(self.rrule).month_day
        return month_day is not None and month_day >= 29


@dataclass(frozen=True, slots=True)
class Occurrence:
    local: datetime  # naive wall time as the rule names it: the occurrence's identity
    at: datetime  # the UTC instant it happens


def instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the naive wall time `local` in `zone`, by this module's DST rules."""
    if local.tzinfo is not None:
        raise ValueError("local must be a naive wall time")
    local = local.replace(fold=0)
    at = local.replace(tzinfo=zone).astimezone(UTC)
    if _exists(local, at, zone):
        return at
    # Skipped by a jump forward: gaps last minutes to hours (a whole day at most, Samoa 2011).
    wall = local.replace(second=0, microsecond=0)
    for _ in range(2 * 24 * 60):
        wall += timedelta(minutes=1)
        at = wall.replace(tzinfo=zone).astimezone(UTC)
        if _exists(wall, at, zone):
            return at
    raise ValueError(f"{local} has no valid minute after it in {zone}")


def _exists(local: datetime, at: datetime, zone: ZoneInfo) -> bool:
    return at.astimezone(zone).replace(tzinfo=None, fold=0) == local


def occurrences(
    rule: Rule,
    zone: ZoneInfo,
    after: datetime,
    until: datetime,
    exclude: Collection[datetime] = (),
    *,
    limit: int | None = None,
) -> list[Occurrence]:
    """The meetings with `after < at <= until`, in order, at most `limit` of them.

    `exclude` holds cancelled occurrences, each as its naive `local` or its aware `at`.
    """
    if after.utcoffset() is None or until.utcoffset() is None:
        raise ValueError("after and until must be timezone-aware")
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    excluded_local = {moment for moment in exclude if moment.tzinfo is None}
    excluded_at = {moment.astimezone(UTC) for moment in exclude if moment.tzinfo is not None}
    # A day of margin on both sides covers any offset change; instants decide exactly.
    low = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    high = until.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    found: list[Occurrence] = []
    local: datetime
    for local in _series(rule.rrule, rule.start).xafter(low, inc=True):
        if local > high or (limit is not None and len(found) >= limit):
            break
        at = instant(local, zone)
        if at > until:
            break
        if at > after and local not in excluded_local and at not in excluded_at:
            found.append(Occurrence(local, at))
    return found


def describe_rule(rule: Rule) -> str:
    """Spanish words for `rule`, e.g. "el primer martes de cada mes a las 19:00"."""
    shape = _parse_shape(rule.rrule)
    article = "a la" if rule.hour in (1, 13) else "a las"
    at = f"{article} {rule.hour:02d}:{rule.minute:02d}"
    if shape.month_day is not None:
        return f"el día {shape.month_day} de cada mes {at}"
    if shape.freq == "MONTHLY":
        ordinals = _join([_ORDINAL_NAMES[n] for n, _ in shape.days if n is not None])
        return f"el {ordinals} {WEEKDAYS[shape.days[0][1]]} de cada mes {at}"
    days = _join([_PLURALS[day] for _, day in shape.days])
    if shape.interval == 1:
        return f"todos los {days} {at}"
    return f"cada {_NUMBER_NAMES[shape.interval]} semanas, los {days} {at}"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} y {words[-1]}"


class _Scanner:
    """Takes the repetition words out of the tokens and leaves the rest for `when`'s reader."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.weekdays: list[int] = []
        self.weekly_cue = False  # "todos los", "cada", "los", a plural: more than one day
        self.ordinals: list[int] = []
        self.month_day: int | None = None
        self.month_day_cue = False  # "todos los días 15", "cada día 15": every month
        self.monthly = False
        self.weeks: int | None = None
        self.daily = False
        self.problem: RuleProblem | None = None
        self.rest: list[str] = []

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else ""

    def at(self, *words: str) -> bool:
        return all(self.peek(i) == word for i, word in enumerate(words))

    def scan(self) -> bool:
        while self.pos < len(self.tokens):
            if not self.step():
                return False
        return True

    def step(self) -> bool:
        token = self.peek()
        if token in ("todos", "todas"):
            return self.every()
        if token == "cada":
            return self.each()
        for suffix in _MONTHLY_SUFFIXES:
            if self.at(*suffix):
                self.pos += len(suffix)
                return self.set_monthly()
        if self.at("semana", "por", "medio"):
            self.pos += 3
            return self.set_weeks(2)
        if token in ("diario", "diariamente") or self.at("a", "diario"):
            self.pos += 2 if token == "a" else 1
            self.daily = True
            return True
        if token in ("el", "los"):
            return self.article(token)
        if self.at_day_words():
            return self.day_words(cued=False)
        return self.keep()

    def every(self) -> bool:
        """ "todos los jueves", "todos los días (lunes)", "todas las semanas", "todos los meses"."""
        if self.peek(1) not in ("los", "las"):
            return False
        self.pos += 2
        if self.peek() in ("semanas", "meses"):
            self.pos += 1
            return self.set_weeks(1) if self.peek(-1) == "semanas" else self.set_monthly()
        if self.at_day_words():
            return self.day_words(cued=True)
        if self.peek() == "dias":
            self.pos += 1
            self.daily = True
            return True
        return False

    def each(self) -> bool:
        """ "cada jueves", "cada dos semanas", "cada 15 días", "cada semana", "cada mes"."""
        self.pos += 1
        count = self.number(self.peek())
        if count is not None and self.peek(1) in ("semana", "semanas", "dia", "dias"):
            self.pos += 2
            if self.peek(-1).startswith("semana"):
                return self.set_weeks(count)
            if count == 1:
                self.daily = True
                return True
            if count not in _DAYS_AS_WEEKS:
                self.problem = self.problem or RuleProblem.NOT_WHOLE_WEEKS
                return True
            return self.set_weeks(_DAYS_AS_WEEKS[count])
        if self.peek() in ("semana", "mes"):
            self.pos += 1
            return self.set_weeks(1) if self.peek(-1) == "semana" else self.set_monthly()
        if self.at_day_words():
            return self.day_words(cued=True)
        if self.peek() == "dia":
            self.pos += 1
            self.daily = True
            return True
        return False

    def article(self, token: str) -> bool:
        """ "el/los" before a weekday, an ordinal or a day of the month; else a filler."""
        self.pos += 1
        if self.at_day_words():
            return self.day_words(cued=token == "los")
        if token == "el":
            self.pos -= 1
            return self.keep()
        return False  # `when` does not know "los": nothing of ours followed it

    def at_day_words(self) -> bool:
        token, after = self.peek(), self.peek(1)
        if token in ("dia", "dias"):
            return after in _DAY_WORDS or after.isdigit()
        if token.isdigit():
            return any(self.at_offset(1, suffix) for suffix in _MONTHLY_SUFFIXES)
        return token in _DAY_WORDS or (token in _ORDINAL_WORDS and self.ordinal_chain())

    def day_words(self, cued: bool) -> bool:
        """A weekday list, ordinals and a weekday, or a day of the month (`at_day_words`)."""
        token = self.peek()
        plural = token == "dias"
        if token in ("dia", "dias"):
            self.pos += 1
            token = self.peek()
        if token.isdigit():
            # Without "de cada mes" or "todos los"/"cada" before it, "el día 15" is one date.
            self.month_day_cue = cued
            return self.set_month_day(int(token))
        if token in _ORDINAL_WORDS:
            return self.read_ordinals()
        return self.read_weekdays(cued or plural or token in ("sabados", "domingos"))

    def at_offset(self, offset: int, words: tuple[str, ...]) -> bool:
        return all(self.peek(offset + i) == word for i, word in enumerate(words))

    def ordinal_chain(self) -> bool:
        """Ordinals ("primer", "segundo y cuarto") followed by a weekday.

        Checked ahead because "cuarto" is also a quarter hour ("a las 9 y cuarto")."""
        ahead = 0
        while self.peek(ahead) in _ORDINAL_WORDS:
            ahead += 1
            if self.peek(ahead) == "y" and self.peek(ahead + 1) in _ORDINAL_WORDS:
                ahead += 1
        return self.peek(ahead) in _DAY_WORDS

    def read_ordinals(self) -> bool:
        if self.ordinals:
            return False
        while self.peek() in _ORDINAL_WORDS:
            self.ordinals.append(_ORDINAL_WORDS[self.peek()])
            self.pos += 1
            if self.peek() == "y":
                self.pos += 1
        if len(set(self.ordinals)) != len(self.ordinals) or self.peek() in ("sabados", "domingos"):
            return False
        return self.read_weekdays(cued=False) and len(self.weekdays) == 1

    def read_weekdays(self, cued: bool) -> bool:
        """ "lunes", "lunes y jueves", "lunes, miércoles y viernes", "lunes por medio"."""
        if self.weekdays:
            return False
        while True:
            self.weekdays.append(_DAY_WORDS[self.peek()])
            self.pos += 1
            for joiner in (("y", "los"), ("y", "el"), ("y",), ()):
                if self.at(*joiner) and self.peek(len(joiner)) in _DAY_WORDS:
                    self.pos += len(joiner)
                    break
            else:
                break
        self.weekly_cue = self.weekly_cue or cued or len(self.weekdays) > 1
        if self.at("por", "medio"):  # "lunes por medio": every other Monday
            self.pos += 2
            if not self.set_weeks(2):
                return False
        return len(set(self.weekdays)) == len(self.weekdays)

    def set_month_day(self, day: int) -> bool:
        if self.month_day is not None:
            return False
        self.pos += 1
        self.month_day = day
        if not 1 <= day <= 31:
            self.problem = self.problem or RuleProblem.NO_SUCH_DAY
        return True

    def set_weeks(self, weeks: int) -> bool:
        if self.weeks is not None or not 1 <= weeks <= MAX_INTERVAL_WEEKS:
            return False
        self.weeks = weeks
        return True

    def set_monthly(self) -> bool:
        if self.monthly:
            return False
        self.monthly = True
        return True

    def keep(self) -> bool:
        self.rest.append(self.peek())
        self.pos += 1
        return True

    @staticmethod
    def number(token: str) -> int | None:
        if token.isdigit() and len(token) <= 2:
            return int(token)
        return _NUMBER_WORDS.get(token)

    def shape(self) -> _Shape | RuleProblem:
        """The repetition said, or what is missing or wrong in it."""
        said = [
            bool(self.weekdays),
            bool(self.ordinals),
            self.month_day is not None,
            self.monthly,
            self.weeks is not None,
            self.daily,
        ]
        weekdays, ordinals, month_day, monthly, weeks, daily = said
        if daily:
            return RuleProblem.DAILY if sum(said) == 1 else RuleProblem.NOT_UNDERSTOOD
        if ordinals:
            if not monthly or month_day or weeks:
                return RuleProblem.NOT_UNDERSTOOD
            days: list[tuple[int | None, int]] = [(n, self.weekdays[0]) for n in self.ordinals]
            return _shape("MONTHLY", 1, days, None)
        if month_day:
            if weekdays or weeks:
                return RuleProblem.NOT_UNDERSTOOD
            if not (monthly or self.month_day_cue):
                return RuleProblem.NOT_REPEATING
            return _shape("MONTHLY", 1, [], self.month_day)
        if monthly:
            return RuleProblem.NOT_UNDERSTOOD if weekdays or weeks else RuleProblem.NO_DAY
        if not weekdays:
            return RuleProblem.NO_DAY if weeks else RuleProblem.NOT_REPEATING
        if not (weeks or self.weekly_cue):
            return RuleProblem.NOT_REPEATING
        return _shape("WEEKLY", self.weeks or 1, [(None, day) for day in self.weekdays], None)


def parse_rule(text: str, now: datetime, zone: ZoneInfo) -> Rule | RuleProblem:
    """The recurring meeting `text` names, first meeting strictly after `now`, or the problem."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(zone).date()
    scanner = _Scanner(_tokenize(text))
    if not scanner.tokens or not scanner.scan():
        return RuleProblem.NOT_UNDERSTOOD
    reader = _Reader(scanner.rest, today)
    if not reader.read():
        return RuleProblem.NOT_UNDERSTOOD
    shape = scanner.shape()
    if reader.dates:  # "mañana", "28/11": one day, or a contradiction with the repetition
        said_repetition = shape != RuleProblem.NOT_REPEATING
        return RuleProblem.NOT_UNDERSTOOD if said_repetition else RuleProblem.NOT_REPEATING
    if scanner.problem is not None:
        return scanner.problem
    if isinstance(shape, RuleProblem):
        return shape
    if reader.hour is None:
        return RuleProblem.NO_TIME
    hour = _hour_of_day(reader.hour, reader.period, reader.clock24)
    if hour is None or not 0 <= reader.minute <= 59:
        return RuleProblem.NOT_UNDERSTOOD
    return Rule(shape.rrule(), _first(shape, time(hour, reader.minute), today, now, zone))


def _first(shape: _Shape, at: time, today: date, now: datetime, zone: ZoneInfo) -> datetime:
    # Without INTERVAL, so that "cada dos semanas el lunes" starts on the next Monday: dateutil
    # counts the weeks of an interval from the week of DTSTART.
    candidates: Iterator[datetime] = iter(
        _series(shape._replace(interval=1).rrule(), datetime.combine(today, at))
    )
    for local in islice(candidates, 400):  # any of our shapes matches within two months
        if instant(local, zone) > now:
            return local
    raise AssertionError(f"no occurrence of {shape.rrule()} found")  # pragma: no cover
