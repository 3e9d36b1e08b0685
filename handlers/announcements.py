"""`/anuncio`: a coordinator writes, sees a preview with the number of recipients, confirms;
the outbox delivers and the coordinator gets the final count."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from handlers.common import coordinated_barrios, main_menu, require_coordinator
from handlers.core import InboundKind, Option, Turn, parse_id
from handlers.outbox import barrio_recipients, enqueue, recipients_of
from models import Announcement, Barrio, Priority, queries

FLOW = "anu"
MAX_TEXT = 3500  # leaves room for the header within Telegram's 4096


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
        texts.ANNOUNCE_CONFIRM.format(count=count, barrios=", ".join(b.name for b in barrios)),
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
    turn.say(texts.ANNOUNCE_QUEUED.format(count=len(recipients)), main_menu(turn.member))


async def report_done(
    session: AsyncSession,
    announcement_id: int,
    counts: dict[str, int],
    now: datetime,
    zone: ZoneInfo,
) -> None:
    """Tell the author the final count, once (guarded by `reported_at`)."""
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
    await enqueue(
        session,
        recipients_of(author),
        texts.ANNOUNCE_REPORT.format(
            sent=counts.get("sent", 0),
            failed=counts.get("failed", 0),
            unreachable=counts.get("unreachable", 0),
            ambiguous=counts.get("ambiguous", 0),
        ),
        now=now,
        zone=zone,
        priority=Priority.NOTICE,
        urgent=True,
    )
