"""`/start [código]` and `/registro`: from a poster's link to a member of a barrio in ≤ 5 answers.

Answers: name, business name, rubro, barrio (skipped when the invite link names it), consent.
Nothing personal is stored as a `Member` until the person consents; until then the answers live
in the conversation state and vanish with `/cancelar` or a "No acepto".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import barrio_info, texts
from handlers.approvals import JoinRoute, ask_to_join, join_route, rejection_text
from handlers.common import (
    ASK_ANOTHER_BARRIO,
    category_options,
    main_menu,
    say_menu,
    take_text,
    without_barrio,
)
from handlers.core import Option, Turn, fold, parse_id
from handlers.reminders import barrio_zone
from handlers.removal import removal_text
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
# Where a word or two typed may pick an option (handlers/dialogue.py `_options_fitting`).
CHOICE_STEPS = frozenset({"category", "consent"})
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
            await _already_registered(turn, turn.member)
        else:
            await join(turn, turn.member, barrio)
        return
    if barrio is None:
        turn.say(texts.WELCOME)
        await begin(turn, None)
    else:
        turn.say(texts.WELCOME_BARRIO.format(barrio=barrio.name, comuna=barrio.comuna))
        if await _route(turn, barrio) == JoinRoute.NOBODY:
            # Said before the questions, not after: they register knowing no request goes.
            turn.say(texts.REGISTER_WITHOUT_REQUEST.format(barrio=barrio.name))
        await begin(turn, barrio)


async def register(turn: Turn, _args: str) -> None:
    if turn.member is not None:
        await _already_registered(turn, turn.member)
        return
    await begin(turn, None)


async def _already_registered(turn: Turn, member: Member) -> None:
    if without_barrio(member):
        # Turned down, or gone: what happened and a way into a barrio, not a dead end.
        await barrio_info.show_standing(
            turn, member, texts.NO_BARRIO_REGISTERED.format(name=member.name)
        )
    else:
        say_menu(turn, texts.ALREADY_REGISTERED.format(name=member.name))


async def ask_another_barrio(turn: Turn) -> None:
    """Someone registered asks to join a barrio from the registration's list, without the
    barrios that turned them down or have them already (step `join`)."""
    member = turn.member
    if member is None:
        await begin(turn, None)
        return
    turn.finish()
    turn.enter(FLOW, "join")
    await prompt(turn)


def _asked_already(member: Member | None) -> set[int]:
    """The barrios a person is in, is waiting for, was turned down by or removed from: not
    offered again (one they left is: `join` says when they may ask again)."""
    if member is None:
        return set()
    asked = (
        MembershipStatus.ACTIVE,
        MembershipStatus.PENDING,
        MembershipStatus.REJECTED,
        MembershipStatus.REMOVED,
    )
    return {m.barrio_id for m in member.memberships if m.status in asked}


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
    elif step in ("barrio", "join"):
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
    elif step in ("barrio", "join") and turn.inbound.text.strip():
        await _ask_barrio(turn, turn.inbound.text)
    else:
        turn.say(texts.CHOOSE_FROM_OPTIONS)
        await prompt(turn)


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    if f"{FLOW}:{action}" == ASK_ANOTHER_BARRIO:
        # From a rejection notice or /barrio: it works outside the dialogue.
        await ask_another_barrio(turn)
        return True
    if action in ("joinok", "joinno"):
        await _confirm_join(turn, action, arg)
        return True
    if turn.flow != FLOW:
        return False
    if action == "cat" and turn.step == "category" and arg in texts.BUSINESS_CATEGORIES:
        await _after_category(turn, arg)
        return True
    picking = turn.step in ("barrio", "join")
    if action == "bar" and picking and (barrio_id := parse_id(arg)) is not None:
        barrio = await turn.session.get(Barrio, barrio_id)
        if barrio is None:
            return False
        if await _route(turn, barrio) == JoinRoute.NOBODY:
            # Offered before its coordinator left, or forged: the list as it is now.
            turn.say(texts.BARRIO_NOT_TAKING_REQUESTS.format(barrio=barrio.name))
            await prompt(turn)
            return True
        if turn.step == "join" and turn.member is not None:
            turn.finish()
            await join(turn, turn.member, barrio)
            return True
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
    taken = _asked_already(turn.member)
    barrios = await _answerable(
        turn, [b for b in await queries.all_barrios(turn.session) if b.id not in taken]
    )
    if not barrios:
        joining = turn.step == "join"
        turn.finish()
        if joining:
            turn.say(texts.NO_OTHER_BARRIO, main_menu(turn.member))
        else:
            turn.say(texts.NO_BARRIOS)
        return
    header = texts.ASK_BARRIO
    if query:
        wanted = fold(query)
        matching = [b for b in barrios if _named(b, wanted)]
        if matching:
            barrios, header = matching, texts.BARRIO_FILTERED.format(query=query[:40])
        else:
            header = _not_offered(turn.member, wanted) or texts.BARRIO_NOT_FOUND.format(
                query=query[:40]
            )
    options = [
        Option(f"{b.comuna} · {b.name}", f"{FLOW}:bar:{b.id}") for b in barrios[:MAX_BARRIO_BUTTONS]
    ]
    turn.say(header, options)


def _named(barrio: Barrio, wanted: str) -> bool:
    """Whether the folded words typed are in the barrio's comuna or name."""
    return wanted in fold(barrio.comuna) or wanted in fold(barrio.name)


def _not_offered(member: Member | None, wanted: str) -> str | None:
    """Why a barrio the person named is not on their list, when it is one they are in or
    asked to join: it does take part in Barrio Conecta, whatever else the list says."""
    for membership in member.memberships if member is not None else []:
        barrio = membership.barrio
        if membership.status in texts.NOT_OFFERED_BECAUSE and _named(barrio, wanted):
            return texts.NOT_OFFERED_BECAUSE[membership.status].format(barrio=barrio.name)
    return None


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
    route = await _route(turn, barrio)
    if route == JoinRoute.NOBODY:
        # No request that nobody would see: the barrio's link asks again once someone can.
        turn.say(
            texts.REGISTERED_WITHOUT_BARRIO.format(name=member.name, barrio=barrio.name),
            main_menu(member),
        )
        return
    status = await _add_membership(turn, member, barrio)
    if status == MembershipStatus.ACTIVE:
        template = texts.REGISTERED_ACTIVE
    elif route == JoinRoute.ADMINISTRATORS:
        template = texts.REGISTERED_PENDING_TEAM
    else:
        template = texts.REGISTERED_PENDING
    turn.say(template.format(name=member.name, barrio=barrio.name), main_menu(member))


async def join(turn: Turn, member: Member, barrio: Barrio, *, confirmed: bool = False) -> None:
    """A registered member asks to join another barrio (its invite link, or the list):
    once `confirmed`, since its coordination and directory are more people seeing them
    than their consent named."""
    existing = next((m for m in member.memberships if m.barrio_id == barrio.id), None)
    if existing is not None and existing.status == MembershipStatus.ACTIVE:
        say_menu(turn, texts.ALREADY_IN_BARRIO.format(barrio=barrio.name))
        return
    if existing is not None and existing.status == MembershipStatus.PENDING:
        turn.say(texts.ALREADY_PENDING.format(barrio=barrio.name))
        return
    if existing is not None and existing.status == MembershipStatus.REJECTED:
        # A coordinator said no; asking again through the link would just nag them. Why,
        # whom to talk to, and the way into another barrio instead.
        contacts = await queries.barrio_contacts(turn.session, barrio.id)
        reason, note = existing.rejection_reason, existing.rejection_note
        by_team = not await queries.coordinators_of(turn.session, barrio.id)
        turn.say(
            f"{rejection_text(barrio.name, reason, note, contacts, by_team=by_team)}\n\n"
            f"{texts.REJECTION_WAY_OUT}",
            [Option(texts.ASK_OTHER_BARRIO, ASK_ANOTHER_BARRIO)],
        )
        return
    if existing is not None and existing.status == MembershipStatus.REMOVED:
        # Its coordination took them out: asking again would undo that behind its back.
        contacts = await queries.barrio_contacts(turn.session, barrio.id)
        text = removal_text(barrio.name, contacts, asked_again=True)
        turn.say(
            f"{text}\n\n{texts.REJECTION_WAY_OUT}",
            [Option(texts.ASK_OTHER_BARRIO, ASK_ANOTHER_BARRIO)],
        )
        return
    if existing is not None and existing.status == MembershipStatus.LEFT:
        again = _may_ask_again(existing)
        if again is not None and turn.now < again:
            when = describe_when(again, turn.zone, turn.now)
            say_menu(turn, texts.REJOIN_WAIT.format(barrio=barrio.name, when=when))
            return
    route = await _route(turn, barrio)
    if route == JoinRoute.NOBODY:
        say_menu(turn, texts.BARRIO_NOT_TAKING_REQUESTS.format(barrio=barrio.name))
        return
    if not confirmed:
        turn.say(
            texts.JOIN_CONFIRM.format(barrio=barrio.name, comuna=barrio.comuna),
            [
                Option(texts.JOIN_CONFIRM_YES, f"{FLOW}:joinok:{barrio.id}"),
                Option(texts.JOIN_CONFIRM_NO, f"{FLOW}:joinno"),
            ],
        )
        return
    status = await _add_membership(turn, member, barrio, existing)
    if status is None:
        # Another turn (the link tapped twice at once) re-opened it first: answer as that
        # turn left it.
        await join(turn, member, barrio, confirmed=True)
        return
    if status == MembershipStatus.ACTIVE:
        template = texts.JOINED
    elif route == JoinRoute.ADMINISTRATORS:
        template = texts.JOIN_REQUESTED_TEAM
    else:
        template = texts.JOIN_REQUESTED
    say_menu(turn, template.format(barrio=barrio.name))


async def _confirm_join(turn: Turn, action: str, arg: str) -> None:
    """The answer to "¿Pido tu ingreso a …?": works outside the dialogue, and a stale one
    (already in, or asked meanwhile) answers as `join` would."""
    member = turn.member
    barrio_id = parse_id(arg) if action == "joinok" else None
    barrio = await turn.session.get(Barrio, barrio_id) if barrio_id is not None else None
    if member is None or (action == "joinok" and barrio is None):
        turn.say(texts.INVALID_BUTTON, main_menu(member))
    elif barrio is None:
        say_menu(turn, texts.JOIN_DECLINED)
    else:
        if turn.flow == FLOW:
            turn.finish()
        await join(turn, member, barrio, confirmed=True)


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
            # An earlier rejection's reason does not belong to the request made now.
            .values(
                status=status, decided_at=decided_at, rejection_reason=None, rejection_note=None
            )
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
    """The barrio's coordinators, or while it has none the administrators, get the request."""
    turn.enqueued += await ask_to_join(
        turn.session,
        membership,
        member,
        barrio,
        now=turn.now,
        zone=barrio_zone(barrio, turn.default_zone),
        admins=turn.admins,
    )


async def _route(turn: Turn, barrio: Barrio) -> JoinRoute:
    return await join_route(turn.session, barrio, turn.admins)


async def _answerable(turn: Turn, barrios: Sequence[Barrio]) -> list[Barrio]:
    """The barrios someone could answer a request to: a barrio that needs approval and has
    no coordinator, with no administrator either, is not offered."""
    if turn.admins:
        return list(barrios)
    coordinated = await queries.coordinator_counts(turn.session)
    return [b for b in barrios if not b.requires_approval or b.id in coordinated]


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
