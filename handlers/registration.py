"""`/start [código]` and `/registro`: from a poster's link to a member of a barrio in ≤ 5 answers.

Answers: name, business name, rubro, barrio (skipped when the invite link names it), consent.
Nothing personal is stored as a `Member` until the person consents; until then the answers live
in the conversation state and vanish with `/cancelar` or a "No acepto".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import texts
from handlers.approvals import join_request
from handlers.common import (
    category_options,
    main_menu,
    say_menu,
    take_text,
)
from handlers.core import Option, Turn, fold, parse_id
from handlers.when import describe_when
from models import (
    Barrio,
    ChannelIdentity,
    Conversation,
    Member,
    Membership,
    MembershipStatus,
    queries,
)

FLOW = "reg"
MAX_BARRIO_BUTTONS = 20


async def start(turn: Turn, args: str) -> None:
    """`/start`, with the invite code a Telegram deep link carries as its argument."""
    code = args.strip()
    barrio = await queries.barrio_by_invite(turn.session, code) if code else None
    if code and barrio is None:
        turn.say(texts.INVITE_UNKNOWN, main_menu(turn.member))
        return
    if turn.member is not None:
        if barrio is None:
            say_menu(turn, texts.ALREADY_REGISTERED.format(name=turn.member.name))
        else:
            await join(turn, turn.member, barrio)
        return
    if barrio is None:
        turn.say(texts.WELCOME)
        await begin(turn, None)
    else:
        turn.say(texts.WELCOME_BARRIO.format(barrio=barrio.name, comuna=barrio.comuna))
        await begin(turn, barrio)


async def register(turn: Turn, _args: str) -> None:
    if turn.member is not None:
        say_menu(turn, texts.ALREADY_REGISTERED.format(name=turn.member.name))
        return
    await begin(turn, None)


async def begin(turn: Turn, barrio: Barrio | None) -> None:
    turn.finish()
    turn.enter(FLOW, "name", barrio_id=barrio.id if barrio else None)
    if len(turn.channels) > 1:
        # Someone already registered on the other channel links it instead of registering twice.
        turn.say(f"{texts.REGISTRATION_INTRO}\n{texts.REGISTRATION_LINK_HINT}")
    else:
        turn.say(texts.REGISTRATION_INTRO)
    await prompt(turn)


async def prompt(turn: Turn) -> None:
    step = turn.step
    if step == "name":
        turn.say(texts.ASK_NAME)
    elif step == "business":
        turn.say(texts.ASK_BUSINESS.format(name=turn.data["name"]))
    elif step == "category":
        turn.say(texts.ASK_CATEGORY, category_options(f"{FLOW}:cat"))
    elif step == "barrio":
        await _ask_barrio(turn, "")
    elif step == "consent":
        barrio = await turn.session.get(Barrio, turn.data["barrio_id"])
        turn.say(
            texts.ASK_CONSENT.format(barrio=barrio.name if barrio else ""),
            [
                Option(texts.CONSENT_YES, f"{FLOW}:ok:listed"),
                Option(texts.CONSENT_HIDDEN, f"{FLOW}:ok:hidden"),
                Option(texts.CONSENT_NO, f"{FLOW}:no"),
            ],
        )


async def on_input(turn: Turn) -> None:
    step = turn.step
    if step == "name":
        await take_text(turn, "name", "business", prompt, min_length=2, max_length=60)
    elif step == "business":
        await take_text(turn, "business", "category", prompt, min_length=2, max_length=80)
    elif step == "barrio" and turn.inbound.text.strip():
        await _ask_barrio(turn, turn.inbound.text)
    else:
        turn.say(texts.CHOOSE_FROM_OPTIONS)
        await prompt(turn)


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    if turn.flow != FLOW:
        return False
    if action == "cat" and turn.step == "category" and arg in texts.BUSINESS_CATEGORIES:
        await _after_category(turn, arg)
        return True
    if action == "bar" and turn.step == "barrio" and (barrio_id := parse_id(arg)) is not None:
        barrio = await turn.session.get(Barrio, barrio_id)
        if barrio is None:
            return False
        turn.goto("consent", barrio_id=barrio.id)
        await prompt(turn)
        return True
    if action == "ok" and turn.step == "consent" and arg in ("listed", "hidden"):
        await _create_member(turn, listed=arg == "listed")
        return True
    if action == "no" and turn.step == "consent":
        turn.finish()
        turn.say(texts.CONSENT_DECLINED, main_menu(None))
        return True
    return False


async def _after_category(turn: Turn, category: str) -> None:
    if turn.data.get("barrio_id") is None:
        turn.goto("barrio", category=category)
    else:
        turn.goto("consent", category=category)
    await prompt(turn)


async def _ask_barrio(turn: Turn, query: str) -> None:
    barrios = list(await queries.all_barrios(turn.session))
    if not barrios:
        turn.finish()
        turn.say(texts.NO_BARRIOS)
        return
    header = texts.ASK_BARRIO
    if query:
        wanted = fold(query)
        matching = [b for b in barrios if wanted in fold(b.comuna) or wanted in fold(b.name)]
        if matching:
            barrios, header = matching, texts.BARRIO_FILTERED.format(query=query[:40])
        else:
            header = texts.BARRIO_NOT_FOUND.format(query=query[:40])
    options = [
        Option(f"{b.comuna} · {b.name}", f"{FLOW}:bar:{b.id}") for b in barrios[:MAX_BARRIO_BUTTONS]
    ]
    turn.say(header, options)


async def _create_member(turn: Turn, *, listed: bool) -> None:
    data = turn.data
    barrio = await turn.session.get(Barrio, data["barrio_id"])
    if barrio is None:  # deleted while the person was answering
        turn.goto("barrio", barrio_id=None)
        await prompt(turn)
        return
    member = Member(
        name=data["name"],
        business_name=data["business"],
        business_category=data["category"],
        consent_at=turn.now,
        show_in_directory=listed,
        identities=[
            ChannelIdentity(
                channel=turn.inbound.channel,
                external_id=turn.inbound.sender_id,
                last_inbound_at=turn.now,
            )
        ],
        memberships=[],
    )
    turn.session.add(member)
    await turn.session.flush()
    turn.member = member
    turn.finish()
    status = await _add_membership(turn, member, barrio)
    template = (
        texts.REGISTERED_ACTIVE if status == MembershipStatus.ACTIVE else texts.REGISTERED_PENDING
    )
    turn.say(template.format(name=member.name, barrio=barrio.name), main_menu(member))


async def join(turn: Turn, member: Member, barrio: Barrio) -> None:
    """A registered member follows another barrio's invite link."""
    existing = next((m for m in member.memberships if m.barrio_id == barrio.id), None)
    if existing is not None and existing.status == MembershipStatus.ACTIVE:
        say_menu(turn, texts.ALREADY_IN_BARRIO.format(barrio=barrio.name))
        return
    if existing is not None and existing.status == MembershipStatus.PENDING:
        turn.say(texts.ALREADY_PENDING.format(barrio=barrio.name))
        return
    if existing is not None and existing.status == MembershipStatus.REJECTED:
        # A coordinator said no; asking again through the link would just nag them.
        turn.say(texts.REJECTED_FOR_MEMBER.format(barrio=barrio.name))
        return
    if existing is not None and existing.status == MembershipStatus.LEFT:
        again = _may_ask_again(existing)
        if again is not None and turn.now < again:
            when = describe_when(again, turn.zone, turn.now)
            say_menu(turn, texts.REJOIN_WAIT.format(barrio=barrio.name, when=when))
            return
    status = await _add_membership(turn, member, barrio, existing)
    if status is None:
        # Another turn (the link tapped twice at once) re-opened it first: answer as that
        # turn left it.
        await join(turn, member, barrio)
        return
    template = texts.JOINED if status == MembershipStatus.ACTIVE else texts.JOIN_REQUESTED
    say_menu(turn, template.format(barrio=barrio.name))


# Leaving a barrio and asking to join it again, over and over, would ask its coordinators
# each time: after leaving, the link answers with this wait instead.
REJOIN_COOLDOWN = timedelta(hours=24)


def _may_ask_again(left: Membership) -> datetime | None:
    """When someone who left may ask to join again, to the minute they are told (rounded up,
    so "a las 12:01" is never refused at 12:01); None if it is not known when they left."""
    if left.decided_at is None:
        return None
    again = left.decided_at + REJOIN_COOLDOWN
    minute = again.replace(second=0, microsecond=0)
    return minute if minute == again else minute + timedelta(minutes=1)


async def _add_membership(
    turn: Turn, member: Member, barrio: Barrio, existing: Membership | None = None
) -> MembershipStatus | None:
    """A new membership, or `existing` re-opened; its coordinators are asked if it needs
    approval. None if another turn re-opened `existing` first (`existing` is refreshed)."""
    status = MembershipStatus.PENDING if barrio.requires_approval else MembershipStatus.ACTIVE
    decided_at = None if status == MembershipStatus.PENDING else turn.now
    if existing is None:
        membership = Membership(member=member, barrio=barrio, status=status, decided_at=decided_at)
        turn.session.add(membership)
        await turn.session.flush()
    else:
        # Conditional, so that one person has at most one open request per barrio and its
        # coordinators are asked once, however many times the link is tapped at once.
        reopened = await queries.updated(
            turn.session,
            update(Membership)
            .where(Membership.id == existing.id, Membership.status == existing.status)
            .values(status=status, decided_at=decided_at)
            .execution_options(synchronize_session=False),
        )
        await turn.session.refresh(existing, ["status", "role", "decided_at"])
        if not reopened:
            return None
        membership = existing
    if status == MembershipStatus.PENDING:
        await _ask_coordinators(turn, membership, member, barrio)
    return status


async def _ask_coordinators(
    turn: Turn, membership: Membership, member: Member, barrio: Barrio
) -> None:
    request, buttons = join_request(member, barrio, membership.id)
    for coordinator in await queries.coordinators_of(turn.session, barrio.id):
        await turn.notify(coordinator, request, buttons, about=member, barrio_id=barrio.id)


ABANDONED_AFTER = timedelta(days=7)


async def forget_abandoned(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Answers typed before consent, left unfinished for a week, are deleted: without consent
    we keep nothing."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            delete(Conversation).where(
                Conversation.flow == FLOW, Conversation.updated_at < now - ABANDONED_AFTER
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)
