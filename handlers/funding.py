"""Calls for funding: `/convocatoria` publishes one (Sercotec's or another's) to barrios or a
whole region; `/convocatorias` shows a member the calls open to them, with the days left."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from handlers import reminders, texts
from handlers.common import (
    active_memberships,
    coordinated_barrios,
    main_menu,
    require_active,
    require_coordinator,
    take_text,
)
from handlers.core import Option, Turn, clean_line, parse_id
from handlers.outbox import barrio_recipients
from handlers.when import MONTHS, WEEKDAYS, NoSuchDay, Past, read_day, why_not
from models import Barrio, Delivery, DeliveryStatus, FundingCall, Priority

FLOW = "cnv"
# Where a word or two typed may pick an option (handlers/dialogue.py `_options_fitting`).
CHOICE_STEPS = frozenset({"audience"})
MAX_URL = 300
SHOWN = 8


async def begin(turn: Turn, _args: str = "") -> None:
    if not require_coordinator(turn):
        return
    turn.finish()
    turn.enter(FLOW, "name")
    await prompt(turn)


async def prompt(turn: Turn) -> None:
    step = turn.step
    if step == "name":
        turn.say(texts.CALL_ASK_NAME)
    elif step == "description":
        turn.say(texts.CALL_ASK_DESCRIPTION)
    elif step == "link":
        turn.say(texts.CALL_ASK_LINK, [Option(texts.CALL_NO_LINK, f"{FLOW}:nolink")])
    elif step == "audience":
        barrios = coordinated_barrios(turn.member)
        options = [Option(b.name, f"{FLOW}:bar:{b.id}") for b in barrios]
        if len(barrios) > 1:
            options.append(
                Option(texts.ALL_MY_BARRIOS.format(count=len(barrios)), f"{FLOW}:bar:all")
            )
        for index, region in enumerate(sorted({b.region for b in barrios})):
            options.append(
                Option(texts.CALL_ALL_REGION.format(region=region), f"{FLOW}:reg:{index}")
            )
        turn.say(texts.CALL_ASK_AUDIENCE, options)
    elif step == "opens":
        turn.say(texts.CALL_ASK_OPENS)
    elif step in ("closes", "reclose"):
        turn.say(texts.CALL_ASK_CLOSES)
    elif step == "confirm":
        barrio_ids = await _audience(turn, turn.data.get("region"), turn.data.get("barrio_ids", []))
        count = len(await barrio_recipients(turn.session, barrio_ids, exclude_member_id=_me(turn)))
        turn.say(card_from(turn.data))
        turn.say(
            texts.CALL_CONFIRM.format(people=texts.people(count)),
            [Option(texts.CALL_PUBLISH, f"{FLOW}:publish"), Option(texts.CANCEL, "menu:cancelar")],
        )


def _me(turn: Turn) -> int | None:
    return turn.member.id if turn.member else None


def web_address(typed: str) -> str | None:
    """A link as people type it: "www.sercotec.cl" gets its https://; None for anything
    that is not a web address (spaces, no dot in the host, too long)."""
    url = typed.strip()
    if not url.casefold().startswith(("https://", "http://")):
        url = f"https://{url}"
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # "http://[sercotec" and the like
        return None
    if len(url) > MAX_URL or any(c.isspace() for c in url) or "." not in host.strip("."):
        return None
    return url


async def on_input(turn: Turn) -> None:
    step = turn.step
    if step == "name":
        await take_text(turn, "name", "description", prompt, max_length=120)
    elif step == "description":
        await take_text(turn, "description", "link", prompt, max_length=500)
    elif step == "link":
        url = web_address(turn.inbound.text)
        if url is None:
            turn.say(texts.CALL_BAD_LINK)
            return
        turn.goto("audience", url=url)
        await prompt(turn)
    elif step == "reclose":
        await _reclose(turn)
    elif step in ("opens", "closes"):
        day = _typed_day(turn)
        if day is None:
            return
        if step == "opens" and day - _today(turn) > timedelta(days=300):
            # "1/11" typed on 24/11 means the call that opened this month, not next year's:
            # read it as of a year ago. A typed year ("29/02/2028") reads the same either way.
            day = parse_day(turn.inbound.text, turn, now=turn.now - timedelta(days=365)) or day
        if step == "opens":
            turn.goto("closes", opens=day.isoformat())
        elif not _closing_day_fits(turn, day, date.fromisoformat(turn.data["opens"])):
            return
        else:
            turn.goto("confirm", closes=day.isoformat())
        await prompt(turn)
    else:
        turn.say(texts.CHOOSE_FROM_OPTIONS)
        await prompt(turn)


def parse_day(text: str, turn: Turn, now: datetime | None = None) -> date | None:
    """A day as people write it ("hoy", "15/12", "15 de diciembre"): a call's days are whole
    days (it closes at the end of its last one), so no hour is asked."""
    day = read_day(clean_line(text)[:40], now or turn.now, turn.zone)
    return day if isinstance(day, date) else None


def _typed_day(turn: Turn) -> date | None:
    """The day typed, or None once the person has been told what is wrong with it."""
    day = read_day(clean_line(turn.inbound.text)[:40], turn.now, turn.zone)
    if isinstance(day, NoSuchDay):
        turn.say(f"{why_not(day, turn.zone, turn.now)} {texts.CALL_ANOTHER_DAY}")
        return None
    if day is None:
        turn.say(texts.CALL_BAD_DAY)
    return day


def _closing_day_fits(turn: Turn, day: date, opens: date) -> bool:
    """A closing day from today on and not before the opening day; else say why not."""
    if day < _today(turn):
        turn.say(f"{why_not(Past(day), turn.zone, turn.now)} {texts.CALL_CLOSES_AHEAD}")
        return False
    if day < opens:
        turn.say(texts.CALL_CLOSES_BEFORE)
        return False
    return True


def _today(turn: Turn) -> date:
    return turn.now.astimezone(turn.zone).date()


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    if action in ("reclose", "withdraw", "withdrawyes"):
        await _manage(turn, action, arg)
        return True
    if turn.flow != FLOW or turn.member is None:
        return False
    barrios = coordinated_barrios(turn.member)
    if action == "nolink" and turn.step == "link":
        turn.goto("audience", url=None)
    elif action == "bar" and turn.step == "audience":
        ids = [b.id for b in barrios] if arg == "all" else [parse_id(arg)]
        if not ids or any(i not in {b.id for b in barrios} for i in ids):
            return False
        turn.goto("opens", barrio_ids=ids, region=None)
    elif action == "reg" and turn.step == "audience":
        regions = sorted({b.region for b in barrios})
        index = parse_id(arg)
        if index is None or index >= len(regions):
            return False
        turn.goto("opens", barrio_ids=[], region=regions[index])
    elif action == "publish" and turn.step == "confirm":
        await _publish(turn)
        return True
    else:
        return False
    await prompt(turn)
    return True


async def _audience(turn: Turn, region: str | None, barrio_ids: list[int]) -> list[int]:
    if region is None:
        return barrio_ids
    rows = await turn.session.scalars(select(Barrio.id).where(Barrio.region == region))
    return list(rows.all())


async def _publish(turn: Turn) -> None:
    member = turn.member
    assert member is not None
    data = dict(turn.data)
    mine = coordinated_barrios(member)
    allowed = {b.id for b in mine} >= set(data.get("barrio_ids", [])) and (
        data.get("region") is None or data["region"] in {b.region for b in mine}
    )
    turn.finish()
    if not allowed:
        turn.say(texts.COORDINATORS_ONLY, main_menu(member))
        return
    if date.fromisoformat(data["closes"]) < _today(turn):
        turn.say(texts.CALL_CLOSES_BEFORE, main_menu(member))
        return
    call = FundingCall(
        author_id=member.id,
        name=data["name"],
        description=data["description"],
        url=data.get("url"),
        region=data.get("region"),
        barrio_ids=data.get("barrio_ids", []),
        opens_on=date.fromisoformat(data["opens"]),
        closes_on=date.fromisoformat(data["closes"]),
    )
    turn.session.add(call)
    await turn.session.flush()
    barrio_ids = await _audience(turn, call.region, call.barrio_ids)
    recipients = await barrio_recipients(turn.session, barrio_ids, exclude_member_id=member.id)
    # A call to a whole region is still each member's own barrio's business: leaving it
    # withdraws the notice, unless another barrio of the audience is theirs too.
    await turn.enqueue_per_barrio(
        recipients,
        barrio_ids,
        texts.CALL_NOTICE.format(card=card(call)),
        priority=Priority.BROADCAST,
        broadcast=f"call:{call.id}",
    )
    await reminders.plan_call(turn.session, call, turn.now, turn.default_zone)
    turn.planned = True
    turn.say(texts.CALL_PUBLISHED.format(people=texts.people(len(recipients))), main_menu(member))


def _day(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day.day} de {MONTHS[day.month - 1]}"


def card(call: FundingCall) -> str:
    return texts.CALL_CARD.format(
        name=call.name,
        description=call.description,
        link=texts.CALL_LINK.format(url=call.url) if call.url else "",
        opens=_day(call.opens_on),
        closes=_day(call.closes_on),
    )


def card_from(data: dict[str, object]) -> str:
    draft = FundingCall(
        name=str(data["name"]),
        description=str(data["description"]),
        url=str(data["url"]) if data.get("url") else None,
        opens_on=date.fromisoformat(str(data["opens"])),
        closes_on=date.fromisoformat(str(data["closes"])),
    )
    return card(draft)


async def open_calls(turn: Turn, _args: str = "") -> None:
    """`/convocatorias`: calls not yet closed whose audience includes one of my barrios."""
    member = require_active(turn)
    if member is None:
        return
    barrios = [m.barrio for m in active_memberships(member)]
    ids, regions = {b.id for b in barrios}, {b.region for b in barrios}
    today = _today(turn)
    calls = (
        await turn.session.scalars(
            select(FundingCall)
            .where(FundingCall.closes_on >= today, FundingCall.withdrawn_at.is_(None))
            .order_by(FundingCall.closes_on)
        )
    ).all()
    mine = [c for c in calls if c.region in regions or ids & set(c.barrio_ids)]
    if not mine:
        turn.say(texts.CALLS_NONE, main_menu(member))
        return
    for call in mine[:SHOWN]:
        options = _manage_options(call) if _may_manage(turn, call) else []
        turn.say(card(call) + days_left_line(call, today), options)


def _may_manage(turn: Turn, call: FundingCall) -> bool:
    """Its author, or a coordinator of a barrio it is for."""
    mine = coordinated_barrios(turn.member)
    if not mine:
        return False
    return (
        (turn.member is not None and call.author_id == turn.member.id)
        or bool({b.id for b in mine} & set(call.barrio_ids))
        or call.region in {b.region for b in mine}
    )


def _manage_options(call: FundingCall) -> list[Option]:
    return [
        Option(texts.CALL_RECLOSE, f"{FLOW}:reclose:{call.id}"),
        Option(texts.CALL_WITHDRAW, f"{FLOW}:withdraw:{call.id}"),
    ]


async def _manageable(turn: Turn, call_id: int | None) -> FundingCall | None:
    call = await turn.session.get(FundingCall, call_id) if call_id is not None else None
    if call is None or call.withdrawn_at is not None or call.closes_on < _today(turn):
        turn.say(texts.CALL_GONE)
        return None
    if not _may_manage(turn, call):
        turn.say(texts.COORDINATORS_ONLY)
        return None
    return call


async def _manage(turn: Turn, action: str, arg: str) -> None:
    call = await _manageable(turn, parse_id(arg))
    if call is None:
        return
    if action == "reclose":
        turn.finish()
        turn.enter(FLOW, "reclose", call_id=call.id)
        await prompt(turn)
    elif action == "withdraw":
        turn.say(
            texts.CALL_WITHDRAW_CONFIRM.format(name=call.name),
            [
                Option(texts.CALL_WITHDRAW_YES, f"{FLOW}:withdrawyes:{call.id}"),
                Option(texts.NO_KEEP, "menu:ayuda"),
            ],
        )
    else:
        call.withdrawn_at = turn.now
        await reminders.drop_call_reminders(turn.session, call.id)
        # Notices not sent yet (quiet hours) are withdrawn with it.
        await turn.session.execute(
            delete(Delivery).where(
                Delivery.broadcast == f"call:{call.id}",
                Delivery.status == DeliveryStatus.PENDING,
            )
        )
        turn.say(texts.CALL_WITHDRAWN.format(name=call.name), main_menu(turn.member))


async def _reclose(turn: Turn) -> None:
    day = _typed_day(turn)
    if day is None:
        return
    call = await _manageable(turn, turn.data.get("call_id"))
    if call is None:
        turn.finish()
        return
    if not _closing_day_fits(turn, day, call.opens_on):
        return
    turn.finish()
    call.closes_on = day
    await turn.session.flush()
    await reminders.plan_call(turn.session, call, turn.now, turn.default_zone)
    turn.planned = True
    turn.say(texts.CALL_RECLOSED.format(name=call.name, closes=_day(day)), main_menu(turn.member))


def days_left_line(call: FundingCall, today: date) -> str:
    if call.opens_on > today:
        return texts.CALL_NOT_OPEN.format(opens=_day(call.opens_on))
    if call.closes_on == today:
        return texts.CALL_LAST_DAY
    if (call.closes_on - today).days == 1:
        return texts.CALL_ONE_DAY_LEFT
    return texts.CALL_DAYS_LEFT.format(days=(call.closes_on - today).days)
