"""`/anuncio`: a coordinator writes, sees a preview with the number of recipients, confirms;
the outbox delivers and the coordinator gets the final count, by channel, with a button that
shows what WhatsApp has said since (delivered, read). When WhatsApp's daily cap holds part of
it back, the coordinator is told how many wait and from when, and the report waits for them."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from handlers.common import coordinated_barrios, main_menu, require_coordinator
from handlers.core import InboundKind, Option, Turn, parse_id
from handlers.outbox import barrio_recipients, enqueue, recipients_of
from handlers.reminders import barrio_zone
from handlers.when import describe_when
from models import Announcement, Barrio, Delivery, DeliveryStatus, Priority, queries

FLOW = "anu"
# Where a word or two typed may pick an option (handlers/dialogue.py `_options_fitting`).
CHOICE_STEPS = frozenset({"barrio"})
MAX_TEXT = 3500  # leaves room for the header within Telegram's 4096
# Twilio tells a WhatsApp message's fate in a status callback seconds after accepting it; a
# failure then (the daily cap, the 24-hour window) must not be reported as sent. The report
# waits this long after the last WhatsApp send that has no word yet (the dispatcher asks
# again every minute, `report_unreported`).
REPORT_GRACE = timedelta(minutes=1)
# Channels whose platform tells us after the send what became of a message.
WITH_RECEIPTS = "whatsapp"
# How much of its text names the announcement above its counts.
EXCERPT = 40


async def begin(turn: Turn, _args: str = "") -> None:
    barrios = require_coordinator(turn)
    if not barrios:
        return
    await _progress(turn)
    turn.finish()
    if len(barrios) == 1:
        turn.enter(FLOW, "text", barrio_ids=[barrios[0].id])
    else:
        turn.enter(FLOW, "barrio")
    await prompt(turn)


async def _progress(turn: Turn) -> None:
    """Delivery progress of this coordinator's announcement still going out, if any."""
    assert turn.member is not None
    last = await turn.session.scalar(
        select(Announcement)
        .where(Announcement.author_id == turn.member.id, Announcement.reported_at.is_(None))
        .order_by(Announcement.id.desc())
        .limit(1)
    )
    if last is None:
        return
    counts = await queries.broadcast_counts(turn.session, f"announcement:{last.id}")
    done = sum(n for status, n in counts.items() if status not in ("pending", "sending"))
    if done < sum(counts.values()):
        turn.say(
            texts.ANNOUNCE_PROGRESS.format(
                done=done, total=sum(counts.values()), sent=counts.get("sent", 0)
            )
        )


async def prompt(turn: Turn) -> None:
    if turn.step == "barrio":
        barrios = coordinated_barrios(turn.member)
        options = [Option(b.name, f"{FLOW}:bar:{b.id}") for b in barrios]
        options.append(Option(texts.ALL_MY_BARRIOS.format(count=len(barrios)), f"{FLOW}:bar:all"))
        turn.say(texts.ANNOUNCE_WHICH_BARRIO, options)
    elif turn.step == "text":
        turn.say(texts.ANNOUNCE_ASK)
    elif turn.step == "confirm":
        await _preview(turn)


async def on_input(turn: Turn) -> None:
    inbound = turn.inbound
    if turn.step != "text":
        turn.say(texts.CHOOSE_FROM_OPTIONS)
        await prompt(turn)
        return
    photo = inbound.media_id if inbound.media == "photo" else None
    text = inbound.text.strip()
    if inbound.kind not in (InboundKind.TEXT, InboundKind.MEDIA) or not (text or photo):
        turn.say(texts.EXPECT_TEXT_OR_PHOTO)
        return
    if inbound.kind == InboundKind.MEDIA and photo is None:
        turn.say(texts.EXPECT_TEXT_OR_PHOTO)
        return
    if len(text) > MAX_TEXT:
        turn.say(texts.ANNOUNCE_TOO_LONG.format(limit=MAX_TEXT))
        return
    turn.goto("confirm", text=text, photo=photo)
    await _preview(turn)


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    if action == "rcp":
        # The report's button: it comes long after the dialogue that sent the announcement.
        return await _show_receipts(turn, arg)
    if turn.flow != FLOW:
        return False
    allowed = {b.id: b for b in coordinated_barrios(turn.member)}
    if action == "bar" and turn.step == "barrio":
        if arg == "all":
            ids = list(allowed)
        elif (barrio_id := parse_id(arg)) in allowed:
            ids = [barrio_id]
        else:
            return False
        turn.goto("text", barrio_ids=ids)
        await prompt(turn)
        return True
    if turn.step != "confirm":
        return False
    if action == "edit":
        turn.goto("text")
        await prompt(turn)
        return True
    if action == "send":
        await _send(turn, allowed)
        return True
    return False


async def _barrios(turn: Turn) -> list[Barrio]:
    ids = turn.data.get("barrio_ids", [])
    rows = await turn.session.scalars(
        select(Barrio).where(Barrio.id.in_(ids)).order_by(Barrio.name)
    )
    return list(rows)


def _render(barrios: list[Barrio], text: str) -> str:
    names = ", ".join(b.name for b in barrios)
    return texts.ANNOUNCEMENT_HEADER.format(barrio=names, text=text)


async def _preview(turn: Turn) -> None:
    assert turn.member is not None
    barrios = await _barrios(turn)
    count = len(
        await barrio_recipients(
            turn.session, [b.id for b in barrios], exclude_member_id=turn.member.id
        )
    )
    turn.say(texts.ANNOUNCE_PREVIEW)
    body = _render(barrios, turn.data.get("text", ""))
    turn.say(body + ("\n📷 (con foto)" if turn.data.get("photo") else ""))
    turn.say(
        texts.ANNOUNCE_CONFIRM.format(
            people=texts.people(count), barrios=", ".join(b.name for b in barrios)
        ),
        [
            Option(texts.ANNOUNCE_SEND, f"{FLOW}:send"),
            Option(texts.ANNOUNCE_EDIT, f"{FLOW}:edit"),
            Option(texts.CANCEL, "menu:cancelar"),
        ],
    )


async def _send(turn: Turn, allowed: dict[int, Barrio]) -> None:
    assert turn.member is not None
    barrios = [b for b in await _barrios(turn) if b.id in allowed]
    if not barrios:  # no longer coordinator of any of them
        turn.finish()
        turn.say(texts.COORDINATORS_ONLY, main_menu(turn.member))
        return
    ids = [b.id for b in barrios]
    recipients = await barrio_recipients(turn.session, ids, exclude_member_id=turn.member.id)
    names = ", ".join(b.name for b in barrios)
    text, photo = turn.data.get("text", ""), turn.data.get("photo")
    turn.finish()
    if not recipients:
        turn.say(texts.ANNOUNCE_NOBODY.format(barrios=names), main_menu(turn.member))
        return
    announcement = Announcement(
        author_id=turn.member.id, barrio_ids=ids, text=text, photo=photo, recipients=len(recipients)
    )
    turn.session.add(announcement)
    await turn.session.flush()
    await turn.enqueue_per_barrio(
        recipients,
        ids,
        _render(barrios, text),
        priority=Priority.BROADCAST,
        broadcast=f"announcement:{announcement.id}",
        photo=photo,
    )
    turn.say(
        texts.ANNOUNCE_QUEUED.format(people=texts.people(len(recipients))), main_menu(turn.member)
    )


async def report_done(
    session: AsyncSession,
    announcement_id: int,
    counts: dict[str, int],
    now: datetime,
    zone: ZoneInfo,
) -> None:
    """Tell the author the final count, once (guarded by `reported_at`), once WhatsApp has had
    `REPORT_GRACE` to say what became of the last messages."""
    broadcast = f"announcement:{announcement_id}"
    last_unconfirmed = await session.scalar(
        select(func.max(Delivery.sent_at)).where(
            Delivery.broadcast == broadcast,
            Delivery.channel == WITH_RECEIPTS,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.receipt.is_(None),
        )
    )
    if last_unconfirmed is not None and now - last_unconfirmed < REPORT_GRACE:
        return
    claimed = await queries.updated(
        session,
        update(Announcement)
        .where(Announcement.id == announcement_id, Announcement.reported_at.is_(None))
        .values(reported_at=now),
    )
    if not claimed:
        return
    announcement = await session.get(Announcement, announcement_id)
    if announcement is None or announcement.author_id is None:
        return
    author = await queries.member_with_identities(session, announcement.author_id)
    if author is None:
        return
    tally = await _tally(session, broadcast)
    channels = {channel for channel, _, _ in tally}
    sent: int | str = counts.get("sent", 0)
    if len(channels) > 1:
        sent = texts.ANNOUNCE_SENT_BY_CHANNEL.format(
            sent=sent,
            whatsapp=_count(tally, "whatsapp", DeliveryStatus.SENT),
            telegram=_count(tally, "telegram", DeliveryStatus.SENT),
        )
    options = []
    if WITH_RECEIPTS in channels:
        options.append(Option(texts.ANNOUNCE_RECEIPTS_BUTTON, f"{FLOW}:rcp:{announcement_id}"))
    await enqueue(
        session,
        recipients_of(author),
        texts.ANNOUNCE_REPORT.format(
            sent=sent,
            failed=counts.get("failed", 0),
            unreachable=counts.get("unreachable", 0),
            ambiguous=counts.get("ambiguous", 0),
        ),
        now=now,
        zone=zone,
        options=options,
        priority=Priority.PERSONAL,
    )


# --- what the platforms said (the report's button) --------------------------------------------
Tally = dict[tuple[str, str, str | None], int]


async def _tally(session: AsyncSession, broadcast: str) -> Tally:
    """The broadcast's deliveries by channel, status and receipt."""
    rows = await session.execute(
        select(Delivery.channel, Delivery.status, Delivery.receipt, func.count())
        .where(Delivery.broadcast == broadcast)
        .group_by(Delivery.channel, Delivery.status, Delivery.receipt)
    )
    return {(channel, str(status), receipt): n for channel, status, receipt, n in rows.all()}


def _count(
    tally: Tally,
    channel: str | None,
    *statuses: str,
    receipts: tuple[str | None, ...] | None = None,
) -> int:
    return sum(
        n
        for (c, status, receipt), n in tally.items()
        if (channel is None or c == channel)
        and status in statuses
        and (receipts is None or receipt in receipts)
    )


async def _show_receipts(turn: Turn, arg: str) -> bool:
    """The announcement's counts as they are now: only for its author or a coordinator of
    one of its barrios; a button for an announcement that is gone is stale."""
    announcement_id = parse_id(arg)
    announcement = (
        await turn.session.get(Announcement, announcement_id) if announcement_id else None
    )
    if announcement is None:
        return False
    member = turn.member
    coordinated = {b.id for b in coordinated_barrios(member)}
    mine = member is not None and announcement.author_id == member.id
    if not mine and not coordinated.intersection(announcement.barrio_ids or []):
        turn.say(texts.COORDINATORS_ONLY, main_menu(member))
        return True
    tally = await _tally(turn.session, f"announcement:{announcement.id}")
    excerpt = " ".join(announcement.text.split())
    if len(excerpt) > EXCERPT:
        excerpt = excerpt[: EXCERPT - 1].rstrip() + "…"
    lines = [texts.ANNOUNCE_RECEIPTS_HEADER.format(excerpt=excerpt)]
    channels = {channel for channel, _, _ in tally}
    if "whatsapp" in channels:
        # "read" comes with or without "delivered" before it, and means it arrived too.
        lines.append(
            texts.ANNOUNCE_RECEIPTS_WHATSAPP.format(
                sent=_count(tally, "whatsapp", DeliveryStatus.SENT),
                delivered=_count(
                    tally, "whatsapp", DeliveryStatus.SENT, receipts=("delivered", "read")
                ),
                read=_count(tally, "whatsapp", DeliveryStatus.SENT, receipts=("read",)),
            )
        )
    if "telegram" in channels:
        lines.append(
            texts.ANNOUNCE_RECEIPTS_TELEGRAM.format(
                sent=_count(tally, "telegram", DeliveryStatus.SENT)
            )
        )
    lines.append(
        texts.ANNOUNCE_RECEIPTS_FAILED.format(
            failed=_count(tally, None, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED),
            unreachable=_count(tally, None, DeliveryStatus.UNREACHABLE),
        )
    )
    if ambiguous := _count(tally, None, DeliveryStatus.AMBIGUOUS):
        lines.append(texts.ANNOUNCE_RECEIPTS_AMBIGUOUS.format(ambiguous=ambiguous))
    if waiting := _count(tally, None, DeliveryStatus.PENDING, DeliveryStatus.SENDING):
        lines.append(texts.ANNOUNCE_RECEIPTS_WAITING.format(waiting=waiting))
    # The same button again: receipts keep coming, and asking again is how to see them.
    turn.say(
        "\n".join(lines),
        [Option(texts.ANNOUNCE_RECEIPTS_BUTTON, f"{FLOW}:rcp:{announcement.id}")],
    )
    return True


# --- held back by a channel's daily cap (handlers/broadcasts.py) ------------------------------
async def lock(session: AsyncSession, announcement_id: int) -> None:
    # A write, not SELECT … FOR UPDATE: SQLite has no row locks, and its transaction takes
    # the database's write lock only at its first write, after reads that may be stale.
    await session.execute(
        update(Announcement)
        .where(Announcement.id == announcement_id)
        .values(reported_at=Announcement.reported_at)
        .execution_options(synchronize_session=False)
    )


async def zone_of(session: AsyncSession, announcement_id: int, default: ZoneInfo) -> ZoneInfo:
    """The zone of the announcement's (first) barrio."""
    barrio_ids = await session.scalar(
        select(Announcement.barrio_ids).where(Announcement.id == announcement_id)
    )
    barrio = await session.get(Barrio, barrio_ids[0]) if barrio_ids else None
    return barrio_zone(barrio, default) if barrio is not None else default


async def report_held(
    session: AsyncSession,
    announcement_id: int,
    waiting: int,
    until: datetime,
    now: datetime,
    default_zone: ZoneInfo,
    *,
    tell: bool,
) -> bool:
    """Part of the announcement waits until `until`: the final report is due again when it
    goes (it may have gone already, before WhatsApp said those failed), and with `tell` the
    author hears how many wait and from when. True if a message was queued."""
    await session.execute(
        update(Announcement)
        .where(Announcement.id == announcement_id)
        .values(reported_at=None)
        .execution_options(synchronize_session=False)
    )
    if not tell:
        return False
    announcement = await session.get(Announcement, announcement_id)
    if announcement is None or announcement.author_id is None:
        return False
    author = await queries.member_with_identities(session, announcement.author_id)
    if author is None:
        return False
    zone = await zone_of(session, announcement_id, default_zone)
    queued = await enqueue(
        session,
        recipients_of(author),
        texts.ANNOUNCE_HELD.format(
            people=texts.people(waiting), when=describe_when(until, zone, now)
        ),
        now=now,
        zone=zone,
        priority=Priority.PERSONAL,
    )
    return queued > 0
