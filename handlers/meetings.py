"""Meetings: `/reunion` calls one (title, date in the words people use, place, agenda),
members answer Asistiré / No podré / Tal vez and can change it in `/reuniones`, `/asistencia`
shows who comes, and moving or cancelling a meeting tells everyone invited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from handlers import reminders, series, texts
from handlers.common import (
    active_memberships,
    coordinated_barrios,
    main_menu,
    require_active,
    require_coordinator,
    take_text,
)
from handlers.core import (
    Document,
    Option,
    Rendered,
    Turn,
    clean_line,
    fold,
    parse_id,
    words_of,
)
from handlers.ics import Override, ics_filename, meeting_ics
from handlers.outbox import Recipient, barrio_recipients, enqueue
from handlers.recurrence import Rule, RuleProblem, describe_rule, occurrences, parse_rule
from handlers.series import local_key
from handlers.when import (
    DayWithoutTime,
    NoSuchDay,
    Past,
    describe_day,
    describe_when,
    read_when,
    why_not,
)
from models import (
    Barrio,
    Delivery,
    DeliveryStatus,
    Meeting,
    MeetingInvitation,
    MeetingSeries,
    MeetingStatus,
    Member,
    Membership,
    MembershipStatus,
    Priority,
    Reminder,
    ReminderKind,
    ReminderStatus,
    Rsvp,
    RsvpAnswer,
    queries,
)

FLOW = "reu"
# Where a word or two typed may pick an option (handlers/dialogue.py `_options_fitting`).
CHOICE_STEPS = frozenset({"barrio"})
MEETING_LENGTH = timedelta(hours=2)
RECENT = timedelta(days=30)
SHOWN = 5
NUDGE_EVERY = timedelta(hours=1)
# A rule must give a date within this, or it is refused as giving none.
RULE_LOOKAHEAD = timedelta(days=366)
ANSWERS = {"y": RsvpAnswer.YES, "n": RsvpAnswer.NO, "m": RsvpAnswer.MAYBE}
# The example hour offered when a day came without one, by the part of the day said with it.
HOUR_EXAMPLES = {"am": "10:00", "day": "12:00", "night": "21:00"}


# --- calling a meeting ------------------------------------------------------------------------
async def begin(turn: Turn, _args: str = "") -> None:
    barrios = require_coordinator(turn)
    if not barrios:
        return
    turn.finish()
    if len(barrios) == 1:
        turn.enter(FLOW, "title", barrio_id=barrios[0].id)
    else:
        turn.enter(FLOW, "barrio")
    await prompt(turn)


# Typed at the agenda step, what "Sin temario" means: not an agenda of one word.
NO_AGENDA_WORDS = frozenset(
    {"no", "sin", "ninguno", "nada", "no hay", "sin temario", "no gracias", "listo", "ya"}
)


async def prompt(turn: Turn) -> None:
    step = turn.step
    if step == "barrio":
        options = [Option(b.name, f"{FLOW}:bar:{b.id}") for b in coordinated_barrios(turn.member)]
        turn.say(texts.MEETING_WHICH_BARRIO, options)
    elif step == "title":
        turn.say(texts.MEETING_ASK_TITLE)
    elif step == "when":
        turn.say(texts.MEETING_ASK_WHEN, [Option(texts.MEETING_REPEATS, f"{FLOW}:repeat")])
    elif step == "move":
        # Named: a coordinator with several meetings on screen must see which one moves.
        turn.say(texts.MEETING_ASK_NEW_WHEN.format(meeting=await _moving(turn)))
    elif step in ("when_hour", "move_hour"):
        today = turn.now.astimezone(_flow_zone(turn)).date()
        day = describe_day(date.fromisoformat(turn.data["hour_day"]), today)
        example = HOUR_EXAMPLES.get(turn.data.get("hour_period") or "", "19:00")
        turn.say(texts.MEETING_ASK_HOUR.format(day=day[0].upper() + day[1:], example=example))
    elif step == "rule":
        turn.say(texts.MEETING_ASK_RULE)
    elif step == "rule_check":
        rule = _rule(turn)
        assert rule is not None
        zone = _flow_zone(turn)
        upcoming = occurrences(rule, zone, turn.now, turn.now + RULE_LOOKAHEAD, limit=3)
        dates = "\n".join(f"• {describe_when(o.at, zone, turn.now)}" for o in upcoming)
        note = (
            texts.MEETING_RULE_SKIPS.format(day=rule.start.day) if rule.skips_short_months else ""
        )
        turn.say(
            texts.MEETING_RULE_CHECK.format(rule=describe_rule(rule), dates=dates, note=note),
            [
                Option(texts.MEETING_WHEN_OK, f"{FLOW}:ok"),
                Option(texts.MEETING_RULE_AGAIN, f"{FLOW}:again"),
            ],
        )
    elif step in ("when_check", "move_check"):
        when = describe_when(_moment(turn), _flow_zone(turn), turn.now)
        check = (
            texts.MEETING_MOVE_CHECK.format(meeting=await _moving(turn), when=when)
            if step == "move_check"
            else texts.MEETING_WHEN_CHECK.format(when=when)
        )
        turn.say(
            check,
            [
                Option(texts.MEETING_WHEN_OK, f"{FLOW}:ok"),
                Option(texts.MEETING_WHEN_AGAIN, f"{FLOW}:again"),
            ],
        )
    elif step == "place":
        turn.say(texts.MEETING_ASK_PLACE)
    elif step == "agenda":
        turn.say(texts.MEETING_ASK_AGENDA, [Option(texts.MEETING_NO_AGENDA, f"{FLOW}:noagenda")])
    elif step == "confirm":
        barrio = await turn.session.get(Barrio, turn.data["barrio_id"])
        assert barrio is not None and turn.member is not None
        count = len(
            await barrio_recipients(turn.session, [barrio.id], exclude_member_id=turn.member.id)
        )
        draft = Meeting(
            title=turn.data["title"],
            starts_at=_moment(turn),
            place=turn.data["place"],
            agenda=turn.data.get("agenda", ""),
            barrio=barrio,
        )
        rule = _rule(turn)
        repeats = texts.MEETING_REPEATS_LINE.format(rule=describe_rule(rule)) if rule else ""
        turn.say(card(draft, turn) + repeats)
        turn.say(
            texts.MEETING_CONFIRM.format(people=texts.people(count)),
            [Option(texts.MEETING_SEND, f"{FLOW}:send"), Option(texts.CANCEL, "menu:cancelar")],
        )


async def on_input(turn: Turn) -> None:
    step = turn.step
    if step == "title":
        await take_text(turn, "title", "when", prompt, max_length=80)
    elif step in ("when", "move", "when_hour", "move_hour"):
        await _read_when(turn)
    elif step == "rule":
        await _read_rule(turn)
    elif step == "place":
        await take_text(turn, "place", "agenda", prompt, max_length=120)
    elif step == "agenda" and words_of(turn.inbound.text) in NO_AGENDA_WORDS:
        turn.goto("confirm", agenda="")
        await prompt(turn)
    elif step == "agenda":
        await take_text(turn, "agenda", "confirm", prompt, max_length=500)
    else:
        turn.say(texts.CHOOSE_FROM_OPTIONS)
        await prompt(turn)


async def _read_when(turn: Turn) -> None:
    """The date of a new meeting ("when") or a moved one ("move"). A day typed without an
    hour is kept while "¿A qué hora?" waits for it (step "when_hour" / "move_hour")."""
    step = turn.step
    assert step is not None
    flow_step = step.removesuffix("_hour")
    asking_hour = step != flow_step
    zone = _flow_zone(turn)
    reading = read_when(
        clean_line(turn.inbound.text)[:80],
        turn.now,
        zone,
        day=date.fromisoformat(turn.data["hour_day"]) if asking_hour else None,
        period=turn.data.get("hour_period") if asking_hour else None,
    )
    if isinstance(reading, datetime):
        turn.goto(f"{flow_step}_check", starts_at=reading.isoformat())
        await prompt(turn)
    elif isinstance(reading, DayWithoutTime):
        turn.goto(f"{flow_step}_hour", hour_day=reading.day.isoformat(), hour_period=reading.period)
        await prompt(turn)
    elif isinstance(reading, NoSuchDay):
        turn.say(f"{why_not(reading, zone, turn.now)} {texts.MEETING_WHEN_ANOTHER_DAY}")
    elif isinstance(reading, Past):
        turn.say(f"{why_not(reading, zone, turn.now)} {texts.MEETING_WHEN_AHEAD}")
    elif step == "when" and await _read_as_rule(turn):
        return
    elif step == "when":
        turn.say(texts.MEETING_WHEN_UNCLEAR, [Option(texts.MEETING_REPEATS, f"{FLOW}:repeat")])
    else:
        turn.say(texts.MEETING_HOUR_UNCLEAR if asking_hour else texts.MEETING_WHEN_UNCLEAR)


# Said at "¿Cuándo es?" by someone who wants a series, with no rule a reader could take.
_WANTS_A_SERIES = ("repite", "repetir", "cada semana", "cada mes", "todas las semanas")


async def _read_as_rule(turn: Turn) -> bool:
    """A recurring meeting typed where its date was asked ("todos los jueves a las 19:00"):
    read as the 🔁 button's answer would be. False if the words are no series at all."""
    typed = clean_line(turn.inbound.text)[:120]
    rule = parse_rule(typed, turn.now, _flow_zone(turn))
    unclear = (RuleProblem.NOT_REPEATING, RuleProblem.NOT_UNDERSTOOD)
    if rule in unclear and not any(words in fold(typed) for words in _WANTS_A_SERIES):
        return False
    turn.goto("rule")
    if rule == RuleProblem.NOT_UNDERSTOOD:
        await prompt(turn)  # "se repite": how often, asked as the button asks it
    else:
        await _read_rule(turn)
    return True


async def _read_rule(turn: Turn) -> None:
    zone = _flow_zone(turn)
    rule = parse_rule(clean_line(turn.inbound.text)[:120], turn.now, zone)
    if isinstance(rule, RuleProblem):
        turn.say(texts.MEETING_RULE_PROBLEMS[rule.value])
        return
    upcoming = occurrences(rule, zone, turn.now, turn.now + RULE_LOOKAHEAD, limit=1)
    if not upcoming:
        turn.say(texts.MEETING_RULE_NO_DATES)
        return
    turn.goto(
        "rule_check",
        rule=rule.rrule,
        rule_start=local_key(rule.start),
        starts_at=upcoming[0].at.isoformat(),
    )
    await prompt(turn)


def _flow_zone(turn: Turn) -> ZoneInfo:
    """The zone of the barrio the meeting is for: the dates typed are read, and said, in it
    (a coordinator may coordinate barrios in two zones)."""
    barrio_id = turn.data.get("barrio_id")
    barrio = next((b for b in coordinated_barrios(turn.member) if b.id == barrio_id), None)
    return reminders.barrio_zone(barrio, turn.default_zone) if barrio else turn.zone


def zone_of(meeting: Meeting, turn: Turn) -> ZoneInfo:
    return reminders.barrio_zone(meeting.barrio, turn.default_zone)


def _rule(turn: Turn) -> Rule | None:
    if "rule" not in turn.data:
        return None
    return Rule(turn.data["rule"], datetime.fromisoformat(turn.data["rule_start"]))


def _moment(turn: Turn) -> datetime:
    return datetime.fromisoformat(turn.data["starts_at"])


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    if action in ("cancel", "cancelyes", "move", "nudge", "endser", "endyes"):
        return await _manage(turn, action, arg)
    if turn.flow != FLOW or turn.member is None:
        return False
    step = turn.step
    if action == "bar" and step == "barrio":
        if (barrio_id := parse_id(arg)) not in {b.id for b in coordinated_barrios(turn.member)}:
            return False
        turn.goto("title", barrio_id=barrio_id)
    elif action == "ok" and step == "when_check":
        turn.goto("place")
    elif action == "ok" and step == "rule_check":
        turn.goto(turn.data.get("after_rule", "place"))
    elif action == "repeat" and step == "when":
        turn.goto("rule")
    elif action == "again" and step in ("when_check", "move_check", "rule_check"):
        turn.goto({"when_check": "when", "move_check": "move", "rule_check": "rule"}[step])
    elif action == "noagenda" and step == "agenda":
        turn.goto("confirm", agenda="")
    elif action == "send" and step == "confirm":
        await _send(turn)
        return True
    elif action == "ok" and step == "move_check":
        await _moved(turn)
        return True
    else:
        return False
    await prompt(turn)
    return True


def card(meeting: Meeting, turn: Turn) -> str:
    return meeting_card(meeting, zone_of(meeting, turn), turn.now)


def meeting_card(meeting: Meeting, zone: ZoneInfo, now: datetime) -> str:
    agenda = texts.MEETING_AGENDA.format(agenda=meeting.agenda) if meeting.agenda else ""
    return texts.MEETING_CARD.format(
        title=meeting.title,
        barrio=meeting.barrio.name,
        when=describe_when(meeting.starts_at, zone, now),
        place=meeting.place,
        agenda=agenda,
    )


# An invitation or a change notice is worded again as it is sent (`reminders.render`): held
# by quiet hours overnight, "mañana" must still be true when it arrives. `news` in its params
# says which words; `old` is the date a moved meeting had.
INVITE = "invite"
SERIES_INVITE = "series_invite"
MOVED = "moved"
CANCELLED = "cancelled"


def news_words(
    meeting: Meeting, zone: ZoneInfo, now: datetime, params: dict[str, Any]
) -> Rendered | None:
    """A meeting's invitation or change notice as of `now`; None if it must not go any more
    (what it invites to was cancelled or has started)."""
    news = params.get("news")
    card_words = meeting_card(meeting, zone, now)
    if news == CANCELLED:
        return Rendered(texts.MEETING_CANCELLED_NOTICE.format(card=card_words), [])
    if meeting.status != MeetingStatus.SCHEDULED or meeting.starts_at <= now:
        return None
    if news == MOVED:
        text = texts.MEETING_MOVED_NOTICE.format(
            card=card_words,
            old=describe_when(datetime.fromisoformat(params["old"]), zone, now),
            new=describe_when(meeting.starts_at, zone, now),
        )
    elif news == SERIES_INVITE:
        text = texts.MEETING_SERIES_INVITE.format(rule=params["rule"], card=card_words)
    else:
        text = texts.MEETING_INVITE.format(card=card_words)
    return Rendered(text, rsvp_options(meeting.id))


async def _enqueue_news(
    turn: Turn,
    meeting: Meeting,
    recipients: Sequence[Recipient],
    *,
    priority: Priority,
    broadcast: str | None = None,
    **params: Any,
) -> int:
    params["meeting"] = meeting.id
    words = news_words(meeting, zone_of(meeting, turn), turn.now, params)
    assert words is not None, "news of a meeting that is neither ahead nor cancelled"
    return await enqueue(
        turn.session,
        recipients,
        words.text,
        now=turn.now,
        zone=zone_of(meeting, turn),
        options=words.options,
        priority=priority,
        broadcast=broadcast,
        barrio_id=meeting.barrio_id,
        template=reminders.MEETING_NEWS_TEMPLATE,
        params=params,
    )


def rsvp_options(meeting_id: int) -> list[Option]:
    return [
        Option(texts.RSVP_YES, f"rsv:y:{meeting_id}"),
        Option(texts.RSVP_NO, f"rsv:n:{meeting_id}"),
        Option(texts.RSVP_MAYBE, f"rsv:m:{meeting_id}"),
        calendar_option(meeting_id),
    ]


def calendar_option(meeting_id: int) -> Option:
    return Option(texts.CALENDAR, f"rsv:ics:{meeting_id}")


async def _send(turn: Turn) -> None:
    member = turn.member
    assert member is not None
    barrio_id = turn.data["barrio_id"]
    barrio = await turn.session.get(Barrio, barrio_id)
    if barrio is None or barrio_id not in {b.id for b in coordinated_barrios(member)}:
        turn.finish()
        turn.say(texts.COORDINATORS_ONLY, main_menu(member))
        return
    rule = _rule(turn)
    if _moment(turn) <= turn.now and rule is not None:
        # The first date went by while the preview waited: the next ones, confirmed again.
        zone = _flow_zone(turn)
        upcoming = occurrences(rule, zone, turn.now, turn.now + RULE_LOOKAHEAD, limit=1)
        if upcoming:
            turn.goto(
                "rule_check",
                rule_start=local_key(upcoming[0].local),
                starts_at=upcoming[0].at.isoformat(),
                after_rule="confirm",
            )
            turn.say(texts.MEETING_RULE_FIRST_PASSED)
        else:
            turn.goto("rule")
            turn.say(texts.MEETING_RULE_NO_DATES)
        await prompt(turn)
        return
    if _moment(turn) <= turn.now:  # the preview sat unanswered past the meeting's time
        turn.goto("when")
        turn.say(texts.MEETING_WHEN_PAST)
        return
    if rule is not None:
        await _send_series(turn, barrio, rule)
        return
    meeting = Meeting(
        barrio=barrio,
        author_id=member.id,
        title=turn.data["title"],
        starts_at=_moment(turn),
        place=turn.data["place"],
        agenda=turn.data.get("agenda", ""),
    )
    turn.session.add(meeting)
    await turn.session.flush()
    recipients = await barrio_recipients(turn.session, [barrio.id], exclude_member_id=member.id)
    turn.enqueued += await _enqueue_news(
        turn,
        meeting,
        recipients,
        priority=Priority.BROADCAST,
        broadcast=_broadcast(meeting),
        news=INVITE,
    )
    await record_invited(turn.session, meeting, recipients, turn.now)
    await reminders.plan_meeting(turn.session, meeting, turn.now)
    turn.planned = True
    turn.finish()
    turn.say(texts.MEETING_SENT.format(people=texts.people(len(recipients))), main_menu(member))


async def _send_series(turn: Turn, barrio: Barrio, rule: Rule) -> None:
    member = turn.member
    assert member is not None
    _, meetings = await series.create(
        turn.session,
        barrio=barrio,
        author_id=member.id,
        title=turn.data["title"],
        place=turn.data["place"],
        agenda=turn.data.get("agenda", ""),
        rule=rule,
        now=turn.now,
        default=turn.default_zone,
    )
    turn.finish()
    if not meetings:  # the first date went by while the preview waited
        turn.say(texts.MEETING_WHEN_PAST, main_menu(member))
        return
    first = meetings[0]
    await turn.session.refresh(first, ["barrio"])
    recipients = await barrio_recipients(turn.session, [barrio.id], exclude_member_id=member.id)
    # One invitation for the series, answering its first date; each later date is reminded
    # with its own buttons (`handlers/reminders.py`).
    turn.enqueued += await _enqueue_news(
        turn,
        first,
        recipients,
        priority=Priority.BROADCAST,
        broadcast=_series_broadcast(first.series_id),
        news=SERIES_INVITE,
        rule=describe_rule(rule),
    )
    turn.planned = True
    turn.say(
        texts.MEETING_SERIES_SENT.format(people=texts.people(len(recipients)), dates=len(meetings)),
        main_menu(member),
    )


# --- answering ------------------------------------------------------------------------------
async def on_rsvp(turn: Turn, action: str, arg: str) -> bool:
    """`rsv:y|n|m:<meeting>` answers; `rsv:ics:<meeting>` sends the calendar file."""
    member = require_active(turn)
    if member is None:
        return True
    meeting_id = parse_id(arg)
    meeting = await _meeting(turn, meeting_id) if meeting_id is not None else None
    mine = {m.barrio_id for m in active_memberships(member)}
    if (
        meeting is None
        or meeting.barrio_id not in mine
        or (action not in ANSWERS and action != "ics")
    ):
        turn.say(texts.INVALID_BUTTON)
        return True
    if action == "ics":
        turn.say(texts.CALENDAR_FILE, document=await calendar_file(meeting, turn))
        return True
    if meeting.status == MeetingStatus.CANCELLED or meeting.starts_at <= turn.now:
        reason = (
            texts.RSVP_REASON_CANCELLED
            if meeting.status == MeetingStatus.CANCELLED
            else texts.RSVP_REASON_PAST
        )
        turn.say(texts.RSVP_CLOSED.format(reason=reason))
        return True
    answer = ANSWERS[action]
    rsvp = await turn.session.scalar(
        select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id)
    )
    if rsvp is None:
        turn.session.add(
            Rsvp(meeting_id=meeting.id, member_id=member.id, answer=answer, answered_at=turn.now)
        )
    else:
        rsvp.answer, rsvp.answered_at = answer, turn.now
    turn.say(texts.RSVP_SAVED.format(answer=texts.RSVP_LABELS[answer.value]))
    return True


async def calendar_file(meeting: Meeting, turn: Turn) -> Document:
    if meeting.series_id is not None:
        return await _series_calendar_file(meeting, turn)
    content = meeting_ics(
        uid=f"meeting-{meeting.id}@barrio-conecta",
        title=meeting.title,
        starts_at=meeting.starts_at,
        duration=MEETING_LENGTH,
        place=meeting.place,
        description=meeting.agenda,
        zone_name=str(zone_of(meeting, turn)),
        sequence=meeting.sequence,
        cancelled=meeting.status == MeetingStatus.CANCELLED,
        now=turn.now,
    )
    return Document(ics_filename(meeting.title), content, "text/calendar")


async def record_invited(
    session: AsyncSession, meeting: Meeting, recipients: Sequence[Recipient], now: datetime
) -> None:
    """Who the invitation was queued for: each member with an address that can be reached."""
    member_ids = sorted({r.member_id for r in recipients if r.member_id and not r.unreachable})
    if member_ids:
        await session.execute(
            insert(MeetingInvitation),
            [{"meeting_id": meeting.id, "member_id": m, "invited_at": now} for m in member_ids],
        )


async def _series_calendar_file(meeting: Meeting, turn: Turn) -> Document:
    """The whole series (RRULE, cancelled dates as EXDATE, each date moved on its own as its
    own VEVENT), so phones show every date where it is; for a date moved or cancelled on its
    own, that date's change (RECURRENCE-ID); for a series that ended, its cancellation."""
    made = await turn.session.get(MeetingSeries, meeting.series_id)
    assert made is not None and meeting.occurrence is not None
    zone = reminders.barrio_zone(meeting.barrio, turn.default_zone)
    rule = series.rule_of(made)
    common: dict[str, Any] = {
        "uid": f"series-{made.id}@barrio-conecta",
        "title": made.title,
        "duration": MEETING_LENGTH,
        "place": made.place,
        "description": made.agenda,
        "zone_name": str(zone),
        "now": turn.now,
    }
    local = datetime.fromisoformat(meeting.occurrence)
    dates = await series.dates_of(turn.session, made.id)
    # Each move or cancellation of a date (ending the series cancels those ahead) bumps that
    # date's sequence, and rows are never deleted: the sum only grows, so a phone takes each
    # new file of the series as an update, even when a date moves back where the rule put it.
    changes = sum(other.sequence for other in dates)
    if made.ended_at is not None:
        content = meeting_ics(
            **common,
            starts_at=rule.start,
            rrule=rule.rrule,
            # Above the last file's, whatever it was: ending is one more change.
            sequence=changes + 1,
            cancelled=True,
        )
    elif meeting.status == MeetingStatus.CANCELLED or _moved_alone(meeting, zone):
        content = meeting_ics(
            **common,
            starts_at=meeting.starts_at,
            recurrence_id=local,
            sequence=meeting.sequence,
            cancelled=meeting.status == MeetingStatus.CANCELLED,
        )
    else:
        content = meeting_ics(
            **common,
            starts_at=rule.start,
            rrule=rule.rrule,
            exdates=[
                datetime.fromisoformat(other.occurrence)
                for other in dates
                if other.occurrence is not None and other.status == MeetingStatus.CANCELLED
            ],
            # Every date changed on its own, moved back to the rule's time included: a phone
            # that took its earlier change keeps it until a later one replaces it.
            overrides=[
                Override(datetime.fromisoformat(other.occurrence), other.starts_at, other.sequence)
                for other in dates
                if other.occurrence is not None
                and other.status != MeetingStatus.CANCELLED
                and (other.sequence > 0 or _moved_alone(other, zone))
            ],
            sequence=changes,
        )
    return Document(ics_filename(made.title), content, "text/calendar")


def _moved_alone(meeting: Meeting, zone: ZoneInfo) -> bool:
    """A date of a series moved on its own, away from where the rule put it."""
    return meeting.starts_at != series.occurrence_instant(meeting, zone)


async def _moving(turn: Turn) -> str:
    """The meeting being moved, as the coordinator knows it: its title and current date."""
    meeting = await _meeting(turn, int(turn.data["meeting_id"]))
    if meeting is None:
        return "?"
    when = describe_when(meeting.starts_at, zone_of(meeting, turn), turn.now)
    return texts.MEETING_NAMED.format(title=meeting.title, when=when)


async def _meeting(turn: Turn, meeting_id: int) -> Meeting | None:
    return await turn.session.scalar(
        select(Meeting)
        .where(Meeting.id == meeting_id)
        .options(selectinload(Meeting.barrio), selectinload(Meeting.series))
    )


async def upcoming(turn: Turn, _args: str = "") -> None:
    """`/reuniones`: the member's next meetings, each with its answer buttons."""
    member = require_active(turn)
    if member is None:
        return
    barrio_ids = [m.barrio_id for m in active_memberships(member)]
    meetings = (
        await turn.session.scalars(
            select(Meeting)
            .where(
                Meeting.barrio_id.in_(barrio_ids),
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.starts_at > turn.now,
            )
            .order_by(Meeting.starts_at)
            .limit(5)
            # Joined, not a second query: members ask for their meetings often.
            .options(joinedload(Meeting.barrio))
        )
    ).all()
    if not meetings:
        turn.say(texts.MEETINGS_NONE, main_menu(member))
        return
    answers = dict(
        (
            await turn.session.execute(
                select(Rsvp.meeting_id, Rsvp.answer).where(
                    Rsvp.member_id == member.id, Rsvp.meeting_id.in_([m.id for m in meetings])
                )
            )
        ).all()
    )
    for meeting in meetings:
        answer = answers.get(meeting.id)
        status = (
            texts.MEETINGS_YOUR_ANSWER.format(answer=texts.RSVP_LABELS[answer.value])
            if answer
            else texts.MEETINGS_NO_ANSWER
        )
        turn.say(card(meeting, turn) + status, rsvp_options(meeting.id))


# --- attendance, moving, cancelling ------------------------------------------------------------
async def attendance(turn: Turn, _args: str = "") -> None:
    """Per barrio, the next meetings (those one can still act on) first, then the latest
    past ones, `SHOWN` in all."""
    for barrio in require_coordinator(turn):
        recent = (
            select(Meeting)
            .where(
                Meeting.barrio_id == barrio.id,
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.starts_at > turn.now - RECENT,
            )
            .limit(SHOWN)
            .options(selectinload(Meeting.barrio), selectinload(Meeting.series))
        )
        ahead = (
            await turn.session.scalars(
                recent.where(Meeting.starts_at > turn.now).order_by(Meeting.starts_at)
            )
        ).all()
        past = (
            await turn.session.scalars(
                recent.where(Meeting.starts_at <= turn.now).order_by(Meeting.starts_at.desc())
            )
        ).all()
        meetings = [*ahead, *past][:SHOWN]
        if not meetings:
            turn.say(
                texts.ATTENDANCE_NONE.format(barrio=barrio.name),
                [Option(texts.ATTENDANCE_CALL_ONE, "menu:reunion")],
            )
        for meeting in meetings:
            turn.say(await attendance_card(turn, meeting), _manage_options(meeting, turn))


async def attendance_card(turn: Turn, meeting: Meeting) -> str:
    rows = (
        await turn.session.execute(
            select(Member.id, Member.name, Rsvp.answer)
            .join(Rsvp, Rsvp.member_id == Member.id)
            .where(Rsvp.meeting_id == meeting.id, Rsvp.member_id.in_(_active_in(meeting)))
            .order_by(Member.name)
        )
    ).all()
    names: dict[RsvpAnswer, list[str]] = {answer: [] for answer in RsvpAnswer}
    for _, name, answer in rows:
        names[answer].append(name)
    answered = {member_id for member_id, _, _ in rows}
    waiting = await _unanswered(turn, meeting, answered)
    unreached = await _unreached(turn, meeting)
    pending_names = [name for member_id, name in waiting if member_id not in unreached]
    unreached_names = [name for member_id, name in waiting if member_id in unreached]
    text = texts.ATTENDANCE.format(
        card=card(meeting, turn),
        yes=len(names[RsvpAnswer.YES]),
        yes_names=", ".join(names[RsvpAnswer.YES]) or "—",
        maybe=len(names[RsvpAnswer.MAYBE]),
        maybe_names=", ".join(names[RsvpAnswer.MAYBE]) or "—",
        no=len(names[RsvpAnswer.NO]),
        no_names=", ".join(names[RsvpAnswer.NO]) or "—",
        pending=len(pending_names),
        pending_names=", ".join(pending_names) or "—",
    )
    if unreached_names:
        text += texts.ATTENDANCE_UNREACHED.format(
            count=len(unreached_names), names=", ".join(unreached_names)
        )
    return text


async def _unanswered(turn: Turn, meeting: Meeting, answered: set[int]) -> list[tuple[int, str]]:
    rows = await turn.session.execute(
        select(Member.id, Member.name)
        .where(Member.id.in_(_invited(meeting)), Member.id.in_(_active_in(meeting)))
        .order_by(Member.name)
    )
    return [(member_id, name) for member_id, name in rows.all() if member_id not in answered]


async def _unreached(turn: Turn, meeting: Meeting) -> set[int]:
    """Invited members none of whose invitations arrived (blocked the bot, failed for good)."""
    statuses = await turn.session.execute(
        select(Delivery.member_id, Delivery.status).where(
            Delivery.broadcast == _broadcast(meeting), Delivery.member_id.is_not(None)
        )
    )
    arrived: dict[int, bool] = {}
    for member_id, status in statuses.all():
        ok = status not in (DeliveryStatus.FAILED, DeliveryStatus.UNREACHABLE)
        if member_id is not None:
            arrived[member_id] = arrived.get(member_id, False) or ok
    return {member_id for member_id, ok in arrived.items() if not ok}


def _manage_options(meeting: Meeting, turn: Turn) -> list[Option]:
    if meeting.starts_at <= turn.now:
        return []
    options = [
        Option(texts.MEETING_NUDGE, f"{FLOW}:nudge:{meeting.id}"),
        Option(texts.MEETING_MOVE, f"{FLOW}:move:{meeting.id}"),
        Option(texts.MEETING_CANCEL, f"{FLOW}:cancel:{meeting.id}"),
    ]
    if meeting.series is not None and meeting.series.ended_at is None:
        options.append(Option(texts.MEETING_END_SERIES, f"{FLOW}:endser:{meeting.id}"))
    return options


async def _manage(turn: Turn, action: str, arg: str) -> bool:
    meeting_id = parse_id(arg)
    meeting = await _meeting(turn, meeting_id) if meeting_id is not None else None
    allowed = {b.id for b in coordinated_barrios(turn.member)}
    if meeting is None or meeting.barrio_id not in allowed:
        turn.say(texts.COORDINATORS_ONLY if meeting else texts.INVALID_BUTTON)
        return True
    if meeting.status != MeetingStatus.SCHEDULED or meeting.starts_at <= turn.now:
        turn.say(texts.MEETING_GONE)
        return True
    if action == "nudge":
        await _nudge(turn, meeting)
    elif action in ("endser", "endyes") and meeting.series_id is not None:
        await _end_series(turn, meeting, confirmed=action == "endyes")
    elif action == "cancel":
        turn.say(
            texts.MEETING_CANCEL_CONFIRM.format(title=meeting.title),
            [
                Option(texts.MEETING_CANCEL_YES, f"{FLOW}:cancelyes:{meeting.id}"),
                Option(texts.NO_KEEP, "menu:ayuda"),
            ],
        )
    elif action == "cancelyes":
        if not await _change_scheduled(turn, meeting, status=MeetingStatus.CANCELLED):
            turn.say(texts.MEETING_GONE)
            return True
        # Told first: whose invitation is still queued is not told, and then their invitation
        # (quiet hours, a backlog) is withdrawn, not followed by a cancellation for a meeting
        # they never heard of.
        count = await _tell_invited(turn, meeting, news=CANCELLED)
        await turn.session.execute(
            delete(Delivery).where(
                Delivery.broadcast == _broadcast(meeting), Delivery.status == DeliveryStatus.PENDING
            )
        )
        await reminders.drop_meeting_reminders(turn.session, meeting.id)
        turn.say(
            texts.MEETING_CANCELLED_DONE.format(people=texts.people(count, "invitados")),
            main_menu(turn.member),
        )
    else:
        turn.finish()
        turn.enter(FLOW, "move", meeting_id=meeting.id, barrio_id=meeting.barrio_id)
        await prompt(turn)
    return True


async def _end_series(turn: Turn, meeting: Meeting, *, confirmed: bool) -> None:
    made = await turn.session.get(MeetingSeries, meeting.series_id)
    if made is None or made.ended_at is not None:
        turn.say(texts.MEETING_GONE)
        return
    rule = series.rule_of(made)
    if not confirmed:
        turn.say(
            texts.MEETING_END_SERIES_CONFIRM.format(title=made.title, rule=describe_rule(rule)),
            [
                Option(texts.MEETING_END_SERIES_YES, f"{FLOW}:endyes:{meeting.id}"),
                Option(texts.NO_KEEP, "menu:ayuda"),
            ],
        )
        return
    # Who has not heard of the series yet is not told it ended: their invitation is withdrawn.
    unheard = await _not_heard_yet(turn, meeting)
    cancelled = await series.end(turn.session, made, turn.now)
    await turn.session.execute(
        delete(Delivery).where(
            Delivery.broadcast == _series_broadcast(made.id),
            Delivery.status == DeliveryStatus.PENDING,
        )
    )
    # Everyone invited to what is left hears once, not once per date.
    invited: set[int] = set()
    for each in cancelled:
        invited |= set((await turn.session.scalars(_invited(each))).all())
        await turn.session.execute(
            delete(Delivery).where(
                Delivery.broadcast == _broadcast(each), Delivery.status == DeliveryStatus.PENDING
            )
        )
    invited -= unheard
    everyone = await barrio_recipients(turn.session, [meeting.barrio_id])
    told = [r for r in everyone if r.member_id in invited]
    turn.enqueued += await enqueue(
        turn.session,
        told,
        texts.MEETING_SERIES_ENDED_NOTICE.format(title=made.title, rule=describe_rule(rule)),
        now=turn.now,
        zone=zone_of(meeting, turn),
        priority=Priority.MEETING_CHANGE,
        barrio_id=meeting.barrio_id,
    )
    turn.say(
        texts.MEETING_SERIES_ENDED.format(
            dates=len(cancelled), count=len({r.member_id for r in told})
        ),
        main_menu(turn.member),
    )


async def _moved(turn: Turn) -> None:
    meeting = await _meeting(turn, turn.data["meeting_id"])
    starts_at = _moment(turn)
    allowed = {b.id for b in coordinated_barrios(turn.member)}
    if starts_at <= turn.now:
        turn.goto("move")
        turn.say(texts.MEETING_WHEN_PAST)
        return
    turn.finish()
    if (
        meeting is None
        or meeting.barrio_id not in allowed
        or meeting.status != MeetingStatus.SCHEDULED
    ):
        turn.say(texts.MEETING_GONE, main_menu(turn.member))
        return
    old = meeting.starts_at
    if not await _change_scheduled(turn, meeting, starts_at=starts_at):
        turn.say(texts.MEETING_GONE, main_menu(turn.member))
        return
    # Invitations still waiting are worded as they go, with the new date: only those already
    # invited need to hear about the change.
    await turn.session.refresh(meeting)
    await reminders.plan_meeting(turn.session, meeting, turn.now)
    turn.planned = True
    count = await _tell_invited(turn, meeting, news=MOVED, old=old.isoformat())
    turn.say(
        texts.MEETING_MOVED_DONE.format(people=texts.people(count, "invitados")),
        main_menu(turn.member),
    )


async def _change_scheduled(turn: Turn, meeting: Meeting, **values: Any) -> bool:
    """Conditional, so a cancel and a move (or two cancels) at once cannot both tell
    everyone. Bumps the calendar sequence, which the .ics of the change carries."""
    return await queries.updated(
        turn.session,
        update(Meeting)
        .where(Meeting.id == meeting.id, Meeting.status == MeetingStatus.SCHEDULED)
        .values(sequence=Meeting.sequence + 1, **values),
    )


def _broadcast(meeting: Meeting) -> str:
    return f"meeting:{meeting.id}"


def _series_broadcast(series_id: int | None) -> str:
    return f"series:{series_id}"


async def _not_heard_yet(turn: Turn, meeting: Meeting) -> set[int]:
    """Members whose invitation (to this date, or to its series) is still queued and none
    has gone out: they have not heard of it, and what is queued carries any change."""
    broadcasts = [_broadcast(meeting)]
    if meeting.series_id is not None:
        broadcasts.append(_series_broadcast(meeting.series_id))
    rows = await turn.session.execute(
        select(Delivery.member_id, Delivery.status).where(Delivery.broadcast.in_(broadcasts))
    )
    waiting: set[int | None] = set()
    gone: set[int | None] = set()
    for member_id, status in rows.all():
        (waiting if status == DeliveryStatus.PENDING else gone).add(member_id)
    return {m for m in waiting - gone if m is not None}


def _active_in(meeting: Meeting) -> Select[int]:
    """The meeting's barrio's active members: who left is neither counted nor told."""
    return select(Membership.member_id).where(
        Membership.barrio_id == meeting.barrio_id, Membership.status == MembershipStatus.ACTIVE
    )


def _invited(meeting: Meeting) -> Select[int]:
    return select(MeetingInvitation.member_id).where(MeetingInvitation.meeting_id == meeting.id)


async def _nudge(turn: Turn, meeting: Meeting) -> None:
    """ "Recordar a quienes no han respondido": once an hour at most, it is a nudge."""
    recent = await turn.session.scalar(
        select(Reminder.id).where(
            Reminder.meeting_id == meeting.id,
            Reminder.kind == ReminderKind.NUDGE,
            Reminder.done_at > turn.now - NUDGE_EVERY,
        )
    )
    if recent is not None:
        turn.say(texts.MEETING_NUDGE_TOO_SOON)
        return
    audience = await reminders.reminder_audience(turn.session, meeting, unanswered_only=True)
    if not audience:
        turn.say(texts.MEETING_NUDGE_NOBODY)
        return
    fired = await reminders.queue_meeting_reminder(
        turn.session, meeting, audience, turn.now, turn.default_zone
    )
    if not fired.queued:
        turn.say(texts.MEETING_NUDGE_TOO_LATE)
        return
    turn.session.add(
        Reminder(
            key=f"nudge:{meeting.id}:{turn.now:%Y%m%dT%H%M%S}",
            kind=ReminderKind.NUDGE,
            meeting_id=meeting.id,
            due_at=turn.now,
            status=ReminderStatus.FIRED,
            done_at=turn.now,
            recipients=fired.queued,
        )
    )
    turn.enqueued += fired.queued
    turn.say(texts.MEETING_NUDGED.format(count=fired.queued))


async def _tell_invited(turn: Turn, meeting: Meeting, **news: str) -> int:
    """Tell those invited of a change (`news`, see `news_words`); not those whose invitation
    is still queued (quiet hours): it goes out with the change in it."""
    invited = set((await turn.session.scalars(_invited(meeting))).all())
    invited -= await _not_heard_yet(turn, meeting)
    everyone = await barrio_recipients(turn.session, [meeting.barrio_id])
    told = [r for r in everyone if r.member_id in invited]
    turn.enqueued += await _enqueue_news(
        turn, meeting, told, priority=Priority.MEETING_CHANGE, **news
    )
    return len({r.member_id for r in told})
