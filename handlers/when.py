"""Meeting dates and times as Chilean shopkeepers type them, and said back in Spanish words.

`parse_when("el jueves a las 7 de la tarde", now, zone)` gives a UTC moment, or None when the text
is not understood with confidence; `describe_when` says a moment back ("mañana jueves 26 de
noviembre a las 19:00"), in a form `parse_when` reads again. `read_when` is what a dialogue asks:
a moment ahead, or why not (`NoSuchDay`, `Past`, `DayWithoutTime` to ask the hour and keep the
day), and `read_day` the same for a day alone; `why_not` says the reason in Spanish.

Reading rules (a refusal is cheaper than a meeting at the wrong hour):
- A bare hour 1–7 with no marker ("a las 7", "jueves 7:30") is afternoon: barrio meetings happen
  after work. A leading zero ("07:30") or "hrs" means the 24-hour clock; "de la mañana"/"am" keep
  the hour, "de la tarde"/"de la noche"/"pm" add 12 to hours 1–11.
- Implicit references roll forward: a time alone means today if still ahead, else tomorrow; a
  weekday means the next one (today only if the time is still ahead); a day and month without
  year mean this year, or next year if that day has passed.
- Explicit days are taken literally ("hoy 10:00" at 15:00, "ayer a las 10", "28/11/2020"):
  `read_when` says they are past, `parse_when` leaves it to its caller.
- Refused: a day without a time, a lone number ("9" could be a day), "12 am", "12 de la noche",
  "medianoche" and "próximo" (ambiguous), days that do not exist, contradictions ("miércoles
  26/11" when the 26th is a Thursday, two times) and any word not understood.
- An answer to "¿A qué hora?" (`read_when(..., day=...)`) is read on the day said before: a lone
  number is then surely an hour, and the part of the day said before ("en la tarde") settles an
  hour that fits it (7 → 19:00) and is dropped for one that does not (19:00 in "la mañana").
- A local time skipped by a daylight-saving jump is moved forward by the gap (fold=0).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers import texts
from models.entities import fold

WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
MONTHS = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
    "octubre", "noviembre", "diciembre",
)  # fmt: skip

_WEEKDAY_WORDS = {"miercoles": 2, "sabado": 5} | {name: i for i, name in enumerate(WEEKDAYS)}
_MONTH_WORDS = (
    {name: i for i, name in enumerate(MONTHS, 1)}
    | {name[:3]: i for i, name in enumerate(MONTHS, 1)}
    | {"setiembre": 9, "sept": 9}
)
_RELATIVE_DAYS = {"hoy": 0, "manana": 1, "ayer": -1, "anteayer": -2, "antier": -2}
_FILLERS = frozenset({"el", "la", "las", "a", "al", "de", "del", "en", "por", "para", "dia"})
_PERIOD_WORDS = {"am": "am", "madrugada": "am", "pm": "pm", "tarde": "pm", "noche": "night"}
_CLOCK_WORDS = frozenset({"h", "hs", "hr", "hrs", "hora", "horas"})
_SEPARATORS = frozenset(",.;:!?¡¿")

_NUMERIC_DATE = re.compile(r"(\d{1,2})[/-](\d{1,2})(?:[/-](\d{4}|\d{2}))?(?!\d)")
_CLOCK = re.compile(r"(\d{1,2})[:.](\d{2})(?!\d)")
_TOKEN = re.compile(rf"{_NUMERIC_DATE.pattern}|{_CLOCK.pattern}|\d+|[a-z]+|\S")
_AM_PM = re.compile(r"\b([ap])\.\s?m\b\.?")


def _tokenize(text: str) -> list[str]:
    # Unknown symbols stay as tokens so that the reader refuses them.
    matches = _TOKEN.finditer(_AM_PM.sub(r"\1m", fold(text)))
    return [match[0] for match in matches if match[0] not in _SEPARATORS]


class _Reader:
    """Walks the tokens once, collecting at most one time, one period and one weekday."""

    def __init__(self, tokens: list[str], today: date) -> None:
        self.tokens = tokens
        self.today = today
        self.pos = 0
        self.dates: set[date] = set()
        self.weekday: int | None = None
        self.hour: int | None = None
        self.minute = 0
        self.period: str | None = None
        self.clock24 = False
        self.cued = False  # the number is surely an hour: "a las 9", "9:00", "9 hrs"
        self.missing: NoSuchDay | None = None  # why the reading stopped, when a day was at fault

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else ""

    def read(self) -> bool:
        while self.pos < len(self.tokens):
            if not self.step():
                return False
        return True

    def step(self) -> bool:
        previous = self.tokens[self.pos - 1] if self.pos else ""
        token = self.tokens[self.pos]
        self.pos += 1
        # "la mañana" is the morning and "del día" daytime; a lone "mañana" is tomorrow.
        if token == "manana" and previous == "la":
            return self.set_period("am")
        if token == "dia" and previous == "del":
            return self.set_period("day")
        if token in _PERIOD_WORDS:
            return self.set_period(_PERIOD_WORDS[token])
        if token in _FILLERS:
            return True
        if token in _RELATIVE_DAYS:
            return self.add_date(self.today + timedelta(days=_RELATIVE_DAYS[token]))
        if token == "antes" and self.peek() == "de" and self.peek(1) == "ayer":
            self.pos += 2
            return self.add_date(self.today - timedelta(days=2))
        if token == "pasado" and self.peek() == "manana":
            self.pos += 1
            return self.add_date(self.today + timedelta(days=2))
        if token in _WEEKDAY_WORDS:
            if self.weekday is not None:
                return False
            self.weekday = _WEEKDAY_WORDS[token]
            return True
        if token == "mediodia" or (token == "medio" and self.peek() == "dia"):
            if token == "medio":
                self.pos += 1
            return self.set_time(12, 0, cued=True) and self.set_period("day")
        if match := _NUMERIC_DATE.fullmatch(token):
            day, month, year = match.groups()
            return self.add_day(int(day), int(month), int(year) if year else None)
        if match := _CLOCK.fullmatch(token):
            hour, minute = match.groups()
            return self.set_time(int(hour), int(minute), cued=True, zero=hour.startswith("0"))
        if token.isdigit():
            return self.number(token, cued=previous in ("la", "las"))
        return False

    def number(self, token: str, cued: bool) -> bool:
        """A day of the month before a month name ("28 de noviembre"), else an hour."""
        skip = 1 if self.peek() == "de" else 0
        month = _MONTH_WORDS.get(self.peek(skip))
        if month is not None:
            self.pos += skip + 1
            skip = 1 if self.peek() in ("de", "del") else 0
            year = self.peek(skip)
            if len(year) == 4 and year.isdigit():
                self.pos += skip + 1
                return self.add_day(int(token), month, int(year))
            return self.add_day(int(token), month, None)
        minute = 0
        if self.peek() == "y" and self.peek(1) in ("media", "cuarto"):
            minute = 30 if self.peek(1) == "media" else 15
            self.pos += 2
        zero = len(token) == 2 and token.startswith("0")
        return self.set_time(int(token), minute, cued=cued or minute > 0, zero=zero)

    def set_time(self, hour: int, minute: int, cued: bool, zero: bool = False) -> bool:
        if self.hour is not None:
            return False
        self.hour, self.minute, self.cued, self.clock24 = hour, minute, cued, zero
        if self.peek() in _CLOCK_WORDS:
            self.pos += 1
            self.cued = self.clock24 = True
        return True

    def set_period(self, period: str) -> bool:
        if self.period is not None:
            return False
        self.period = period
        return True

    def add_date(self, day: date) -> bool:
        self.dates.add(day)
        return len(self.dates) == 1

    def add_day(self, day: int, month: int, year: int | None) -> bool:
        if year is not None:
            years = [year + 2000 if year < 100 else year]
        else:
            years = [self.today.year, self.today.year + 1]
        for candidate_year in years:
            try:
                candidate = date(candidate_year, month, day)
            except ValueError:
                continue
            if year is not None or candidate >= self.today:
                return self.add_date(candidate)
        if 1 <= month <= 12 and 1 <= day <= 31:
            # The day is not in that month, or not in the year it would fall in (29 February).
            shown_year = years[0] if year is not None else years[month < self.today.month]
            leap_only = month == 2 and day == 29
            self.missing = NoSuchDay(day, month, shown_year if leap_only else None)
        return False


def _hour_of_day(hour: int, period: str | None, clock24: bool) -> int | None:
    if period == "am":
        return hour if 1 <= hour <= 11 else None
    if period == "pm":
        return hour + 12 if 1 <= hour <= 11 else hour if 12 <= hour <= 23 else None
    if period == "night":  # "2 de la noche" is not 14:00, and "12 de la noche" has no clear day
        return hour + 12 if 6 <= hour <= 11 else hour if 18 <= hour <= 23 else None
    if period == "day" and not 1 <= hour <= 12:
        return None
    if 1 <= hour <= 7 and not clock24:
        return hour + 12
    return hour if 0 <= hour <= 23 else None


def _at(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0 reads a local time skipped by a DST jump with the offset before it, which lands
    # the moment later by the size of the gap instead of failing.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class NoSuchDay:
    """A day the calendar does not have: "31/11", "30 de febrero", "29/02" of a common year."""

    day: int
    month: int
    year: int | None  # set for 29 February, which exists in other years


@dataclass(frozen=True)
class Past:
    """A moment, or a day said without a time, that has gone by."""

    when: datetime | date


@dataclass(frozen=True)
class DayWithoutTime:
    """A day ahead with no hour ("el jueves en la tarde", "mañana"): ask the hour, keep this."""

    day: date
    period: str | None  # "am", "pm", "night", "day": the part of the day said, if any


Reading = datetime | Past | DayWithoutTime | NoSuchDay | None


def _read(
    text: str,
    now: datetime,
    zone: ZoneInfo,
    day: date | None = None,
    period: str | None = None,
) -> datetime | DayWithoutTime | NoSuchDay | None:
    """The literal reading of `text`; with `day`, `text` answers "¿A qué hora?" for that day."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    tokens = _tokenize(text)
    today = now.astimezone(zone).date()
    reader = _Reader(tokens, today)
    if not tokens:
        return None
    if not reader.read():
        return reader.missing
    said_day = bool(reader.dates) or reader.weekday is not None
    if day is not None and not said_day and reader.hour is not None:
        reader.dates, reader.cued = {day}, True
        fits = _hour_of_day(reader.hour, period, reader.clock24) is not None
        if reader.period is None and fits:
            reader.period = period
    if reader.hour is None:
        said = _day_said(reader) if said_day else None
        return DayWithoutTime(said, reader.period) if said is not None else None
    if not (reader.cued or reader.period or reader.dates or reader.weekday is not None):
        return None
    hour = _hour_of_day(reader.hour, reader.period, reader.clock24)
    if hour is None or not 0 <= reader.minute <= 59:
        return None
    at = time(hour, reader.minute)
    if reader.dates:
        said = _day_said(reader)
        return _at(said, at, zone) if said is not None else None
    step = timedelta(days=1)
    moment_day = today
    if reader.weekday is not None:
        moment_day += timedelta(days=(reader.weekday - today.weekday()) % 7)
        step = timedelta(days=7)
    moment = _at(moment_day, at, zone)
    return moment if moment > now else _at(moment_day + step, at, zone)


def _day_said(reader: _Reader) -> date | None:
    """The one day named (a weekday alone is the next one, today included), or None when a
    weekday contradicts the date."""
    if reader.dates:
        (day,) = reader.dates
        return day if reader.weekday is None or day.weekday() == reader.weekday else None
    assert reader.weekday is not None
    return reader.today + timedelta(days=(reader.weekday - reader.today.weekday()) % 7)


def parse_when(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The UTC moment `text` names in `zone`, or None when not understood with confidence."""
    moment = _read(text, now, zone)
    return moment if isinstance(moment, datetime) else None


def read_when(
    text: str,
    now: datetime,
    zone: ZoneInfo,
    *,
    day: date | None = None,
    period: str | None = None,
) -> Reading:
    """A moment strictly after `now`, or why `text` does not give one: a day that does not
    exist, a moment gone by, a day with no hour (ask it, then read the answer again with that
    `day` and `period`), or None when not understood."""
    reading = _read(text, now, zone, day, period)
    if isinstance(reading, datetime) and reading <= now:
        return Past(reading)
    if isinstance(reading, DayWithoutTime) and reading.day < now.astimezone(zone).date():
        return Past(reading.day)
    return reading


def read_day(text: str, now: datetime, zone: ZoneInfo) -> date | NoSuchDay | None:
    """A day alone ("hoy", "15/12", "15 de diciembre", "el jueves"), past ones included, or
    why not; a day with an hour is refused, since only the day would be kept."""
    reading = _read(text, now, zone)
    if isinstance(reading, DayWithoutTime):
        return reading.day
    return reading if isinstance(reading, NoSuchDay) else None


def describe_day(day: date, today: date) -> str:
    """Spanish words for a day, e.g. "ayer lunes 23 de noviembre", "sábado 2 de enero de 2027"."""
    words = f"{WEEKDAYS[day.weekday()]} {day.day} de {MONTHS[day.month - 1]}"
    if day.year != today.year:
        words += f" de {day.year}"
    prefix = {today - timedelta(days=1): "ayer", today: "hoy", today + timedelta(days=1): "mañana"}
    return f"{prefix[day]} {words}" if day in prefix else words


def why_not(reading: NoSuchDay | Past, zone: ZoneInfo, now: datetime) -> str:
    """Says what is wrong with a date typed: "El 30 de febrero no existe.", "Esa fecha ya pasó:
    ayer lunes 23 de noviembre a las 10:00."."""
    if isinstance(reading, Past):
        today = now.astimezone(zone).date()
        if isinstance(reading.when, datetime):
            local = reading.when.astimezone(zone)
            words = describe_when(reading.when, zone, now)
            if local.date() == today - timedelta(days=1):
                words = f"ayer {words}"
        else:
            words = describe_day(reading.when, today)
        return texts.WHEN_PAST.format(when=words)
    month = MONTHS[reading.month - 1]
    if reading.year is not None:
        return texts.WHEN_NO_LEAP_DAY.format(year=reading.year)
    if reading.month == 2:
        return texts.WHEN_NO_SUCH_FEBRUARY_DAY.format(day=reading.day)
    days = calendar.monthrange(2001, reading.month)[1]
    return texts.WHEN_NO_SUCH_DAY.format(
        day=reading.day, month=month, Month=month.capitalize(), days=days
    )


def describe_when(moment: datetime, zone: ZoneInfo, now: datetime | None = None) -> str:
    """Spanish words for `moment` in `zone`, e.g. "mañana jueves 26 de noviembre a las 19:00"."""
    if moment.utcoffset() is None or (now is not None and now.utcoffset() is None):
        raise ValueError("moment and now must be timezone-aware")
    local = moment.astimezone(zone)
    words = f"{WEEKDAYS[local.weekday()]} {local.day} de {MONTHS[local.month - 1]}"
    if now is not None:
        today = now.astimezone(zone).date()
        if local.year != today.year:
            words += f" de {local.year}"
        prefix = {today: "hoy", today + timedelta(days=1): "mañana"}.get(local.date())
        if prefix:
            words = f"{prefix} {words}"
    article = "a la" if local.hour in (1, 13) else "a las"
    return f"{words} {article} {local:%H:%M}"
