"""`/alerta`: any active member warns the whole barrio at once, after a confirmation step.

Alerts jump every queue and ignore quiet hours. The prompt asks what happens and where, not
what anyone looks like. Coordinators close an alert as resolved or a false alarm, and everyone
who got it is told. A member may raise only a few per hour (`ALERTS_PER_HOUR`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select, update

from handlers import texts
from handlers.common import (
    active_memberships,
    coordinated_barrios,
    main_menu,
    say_without_barrio,
    take_text,
    without_barrio,
)
from handlers.core import InboundKind, Option, Turn, parse_id
from handlers.outbox import barrio_recipients, enqueue
from models import (
    AlertKind,
    AlertStatus,
    Barrio,
    Delivery,
    DeliveryStatus,
    MembershipStatus,
    Priority,
    SecurityAlert,
    queries,
)

FLOW = "alr"
# Where a word or two typed may pick an option (handlers/dialogue.py `_options_fitting`).
CHOICE_STEPS = frozenset({"barrio", "kind", "location"})


async def begin(turn: Turn, _args: str = "") -> None:
    member = turn.member
    if member is None or not active_memberships(member):
        # Whoever asks for an alert may be in danger now: the numbers first, whatever their
        # standing; only the message to the barrio waits for an approved membership.
        if member is not None and without_barrio(member):
            turn.say(texts.ALERT_EMERGENCY_FIRST)
            say_without_barrio(turn, member, texts.ALERT_TO_THE_BARRIO)
            return
        waiting = member is not None and any(
            m.status == MembershipStatus.PENDING for m in member.memberships
        )
        why = texts.ALERT_AFTER_APPROVAL if waiting else texts.ALERT_MEMBERS_ONLY
        turn.say(f"{texts.ALERT_EMERGENCY_FIRST}\n\n{why}", main_menu(member))
        return
    turn.finish()
    since = turn.now - timedelta(hours=1)
    recent = await turn.session.scalar(
        select(func.count())
        .select_from(SecurityAlert)
        .where(SecurityAlert.author_id == member.id, SecurityAlert.created_at >= since)
    )
    if (recent or 0) >= turn.alerts_per_hour:
        turn.say(texts.ALERT_LIMIT.format(limit=turn.alerts_per_hour), main_menu(member))
        return
    barrios = [m.barrio for m in active_memberships(member)]
    if len(barrios) == 1:
        turn.enter(FLOW, "kind", barrio_id=barrios[0].id)
    else:
        turn.enter(FLOW, "barrio")
    await prompt(turn)


async def prompt(turn: Turn) -> None:
    if turn.step == "barrio":
        assert turn.member is not None
        barrios = [m.barrio for m in active_memberships(turn.member)]
        turn.say(texts.ALERT_WHICH_BARRIO, [Option(b.name, f"{FLOW}:bar:{b.id}") for b in barrios])
    elif turn.step == "kind":
        turn.say(
            texts.ALERT_ASK_KIND,
            [Option(label, f"{FLOW}:kind:{key}") for key, label in texts.ALERT_KINDS.items()],
        )
    elif turn.step == "description":
        turn.say(texts.ALERT_ASK_DESCRIPTION)
    elif turn.step == "location":
        turn.say(texts.ALERT_ASK_LOCATION, [Option(texts.ALERT_NO_LOCATION, f"{FLOW}:noloc")])
    elif turn.step == "confirm":
        barrio = await turn.session.get(Barrio, turn.data["barrio_id"])
        assert turn.member is not None and barrio is not None
        count = len(
            await barrio_recipients(turn.session, [barrio.id], exclude_member_id=turn.member.id)
        )
        turn.say(
            texts.ALERT_CONFIRM.format(
                people=texts.people(count), barrio=barrio.name, preview=_render(turn, barrio)
            ),
            [Option(texts.ALERT_SEND, f"{FLOW}:send"), Option(texts.CANCEL, "menu:cancelar")],
        )


async def on_input(turn: Turn) -> None:
    if turn.step == "description":
        await take_text(turn, "description", "location", prompt, max_length=300)
        return
    if turn.step == "location" and turn.inbound.kind == InboundKind.LOCATION:
        assert turn.inbound.location is not None
        latitude, longitude = turn.inbound.location
        turn.goto("confirm", latitude=latitude, longitude=longitude)
        await prompt(turn)
        return
    turn.say(texts.CHOOSE_FROM_OPTIONS)
    await prompt(turn)


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    if action in ("ok", "false"):
        await _close(turn, action, arg)
        return True
    if turn.flow != FLOW or turn.member is None:
        return False
    if action == "bar" and turn.step == "barrio":
        mine = {m.barrio_id for m in active_memberships(turn.member)}
        if (barrio_id := parse_id(arg)) not in mine:
            return False
        turn.goto("kind", barrio_id=barrio_id)
    elif action == "kind" and turn.step == "kind" and arg in texts.ALERT_KINDS:
        turn.goto("description", kind=arg)
    elif action == "noloc" and turn.step == "location":
        turn.goto("confirm", latitude=None, longitude=None)
    elif action == "send" and turn.step == "confirm":
        await _send(turn)
        return True
    else:
        return False
    await prompt(turn)
    return True


def _render(turn: Turn, barrio: Barrio) -> str:
    assert turn.member is not None
    data = turn.data
    where = ""
    if data.get("latitude") is not None:
        where = texts.ALERT_WHERE.format(lat=data["latitude"], lon=data["longitude"])
    return texts.ALERT_MESSAGE.format(
        kind=texts.ALERT_KINDS[data["kind"]],
        barrio=barrio.name,
        description=data["description"],
        where=where,
        author=turn.member.name,
        business=turn.member.business_name,
    )


async def _send(turn: Turn) -> None:
    member = turn.member
    assert member is not None
    barrio = await turn.session.get(Barrio, turn.data["barrio_id"])
    still_active = any(m.barrio_id == turn.data["barrio_id"] for m in active_memberships(member))
    if barrio is None or not still_active:
        turn.finish()
        turn.say(texts.NOT_ACTIVE, main_menu(member))
        return
    message = _render(turn, barrio)
    alert = SecurityAlert(
        barrio_id=barrio.id,
        author_id=member.id,
        kind=AlertKind(turn.data["kind"]),
        description=turn.data["description"],
        latitude=turn.data.get("latitude"),
        longitude=turn.data.get("longitude"),
        created_at=turn.now,
    )
    turn.session.add(alert)
    await turn.session.flush()
    recipients = await barrio_recipients(turn.session, [barrio.id], exclude_member_id=member.id)
    coordinators = {c.id for c in await queries.coordinators_of(turn.session, barrio.id)}
    closing = [
        Option(texts.ALERT_RESOLVE, f"{FLOW}:ok:{alert.id}"),
        Option(texts.ALERT_FALSE, f"{FLOW}:false:{alert.id}"),
    ]
    for group, options in (
        ([r for r in recipients if r.member_id in coordinators], closing),
        ([r for r in recipients if r.member_id not in coordinators], []),
    ):
        turn.enqueued += await enqueue(
            turn.session,
            group,
            message,
            now=turn.now,
            zone=turn.zone,
            options=options,
            priority=Priority.ALERT,
            broadcast=f"alert:{alert.id}",
            urgent=True,
            barrio_id=barrio.id,
        )
    turn.finish()
    sent = texts.ALERT_SENT.format(people=texts.people(len(recipients)), barrio=barrio.name)
    # A coordinator who raises the alert must be able to close it too.
    turn.say(sent, closing if member.id in coordinators else main_menu(member))


async def _close(turn: Turn, action: str, arg: str) -> None:
    alert_id = parse_id(arg)
    alert = await turn.session.get(SecurityAlert, alert_id) if alert_id else None
    allowed = {b.id for b in coordinated_barrios(turn.member)}
    if alert is None or alert.barrio_id not in allowed:
        turn.say(texts.COORDINATORS_ONLY if alert else texts.INVALID_BUTTON)
        return
    status = AlertStatus.RESOLVED if action == "ok" else AlertStatus.FALSE_ALARM
    closed = await queries.updated(
        turn.session,
        update(SecurityAlert)
        .where(SecurityAlert.id == alert.id, SecurityAlert.status == AlertStatus.OPEN)
        .values(status=status, closed_at=turn.now)
        .execution_options(synchronize_session=False),
    )
    if not closed:
        turn.say(texts.ALERT_ALREADY_CLOSED)
        return
    barrio = await turn.session.get(Barrio, alert.barrio_id)
    assert barrio is not None and turn.member is not None
    key = f"alert:{alert.id}"
    # Not sent yet: no need to alarm anyone any more.
    await turn.session.execute(
        delete(Delivery).where(Delivery.broadcast == key, Delivery.status == DeliveryStatus.PENDING)
    )
    maybe_received = [DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.AMBIGUOUS]
    reached = (
        select(Delivery.member_id)
        .distinct()
        .where(Delivery.broadcast == key, Delivery.status.in_(maybe_received))
    )
    reached_ids = set((await turn.session.scalars(reached)).all()) | {alert.author_id}
    everyone = await barrio_recipients(turn.session, [barrio.id], exclude_member_id=turn.member.id)
    told = [r for r in everyone if r.member_id in reached_ids]
    when = alert.created_at.astimezone(turn.zone).strftime("%H:%M")
    text = texts.ALERT_CLOSED[status.value].format(
        alert=texts.ALERT_NAMED[alert.kind.value],
        barrio=barrio.name,
        when=when,
    )
    turn.enqueued += await enqueue(
        turn.session,
        told,
        text,
        now=turn.now,
        zone=turn.zone,
        priority=Priority.MEETING_CHANGE,
        urgent=True,
        barrio_id=barrio.id,
    )
    turn.say(texts.ALERT_CLOSED_FOR_COORDINATOR.format(count=len(told)))
