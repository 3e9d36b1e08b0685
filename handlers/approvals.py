"""Coordinators approve or reject join requests, and list their barrio's members (`/miembros`).

A join request goes to the barrio's coordinators, or, while it has none, to the deployment's
administrators; a barrio that neither could answer takes no requests (`join_route`). The
requests waiting follow: to a barrio's first coordinator (`forward_pending`), back to the
administrators when its last one goes (`hand_over_pending`), and they are in an
administrator's `/miembros`.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from handlers.common import (
    ASK_ANOTHER_BARRIO,
    category_label,
    coordinated_barrios,
    main_menu,
    read_text,
    require_coordinator,
    say_menu,
)
from handlers.core import Option, Turn, parse_id
from handlers.outbox import Recipient, enqueue, recipients_at, recipients_of
from handlers.removal import removal_option
from models import Barrio, Member, Membership, MembershipStatus, Priority, Role, queries

FLOW = "apr"
MAX_LISTED = 40
MAX_PENDING_SHOWN = 10
# A join request's buttons (`apr:<action>:<membership id>`), and the reason buttons that
# `no` offers (`apr:rj:<membership id>:<reason>`).
ACTIONS = ("ok", "no", "rj", "tx", "rjt", "keep", "re")
# Reasons besides `texts.REJECTION_REASONS`: none given, or typed (the note).
NO_REASON = "none"
TYPED_REASON = "other"
MAX_NOTE = 200


def join_request(
    member: Member,
    barrio: Barrio,
    membership_id: int,
    *,
    for_admins: bool = False,
    unreached: bool = False,
) -> tuple[str, list[Option]]:
    """The question a coordinator (or, in a barrio without one, an administrator) gets about
    one pending member, with its two buttons. `unreached`: to an administrator, because the
    barrio's coordinators cannot be reached."""
    template = texts.JOIN_REQUEST
    if for_admins:
        template = (
            texts.JOIN_REQUEST_UNREACHED_COORDINATION
            if unreached
            else texts.JOIN_REQUEST_NO_COORDINATION
        )
    text = template.format(
        barrio=barrio.name,
        comuna=barrio.comuna,
        name=member.name,
        business=member.business_name,
        category=category_label(member.business_category),
    )
    return text, [
        Option(texts.APPROVE, f"apr:ok:{membership_id}"),
        Option(texts.REJECT, f"apr:no:{membership_id}"),
    ]


class JoinRoute(enum.Enum):
    """Who answers a request to join a barrio."""

    OPEN = "open"  # nobody needs to: the barrio takes everyone
    COORDINATION = "coordination"
    ADMINISTRATORS = "administrators"  # it has no coordinator yet
    NOBODY = "nobody"  # it needs an approval nobody could give: it takes no requests


async def join_route(
    session: AsyncSession, barrio: Barrio, admins: Sequence[tuple[str, str]]
) -> JoinRoute:
    if not barrio.requires_approval:
        return JoinRoute.OPEN
    coordinators = await queries.coordinators_of(session, barrio.id)
    if _by_coordination(coordinators, admins):
        return JoinRoute.COORDINATION
    return JoinRoute.ADMINISTRATORS if admins else JoinRoute.NOBODY


def _by_coordination(coordinators: Sequence[Member], admins: Sequence[tuple[str, str]]) -> bool:
    """Whether the coordinators answer: they can be written to, or nobody else could answer.
    Every one of them blocked the bot (a request sent there would reach nobody): the
    administrators answer."""
    reachable = [r for c in coordinators for r in recipients_of(c) if not r.unreachable]
    return bool(reachable) or (bool(coordinators) and not admins)


async def ask_to_join(
    session: AsyncSession,
    membership: Membership,
    member: Member,
    barrio: Barrio,
    *,
    now: datetime,
    zone: ZoneInfo,
    admins: Sequence[tuple[str, str]],
) -> int:
    """Queue the join request to the barrio's coordinators, or to the administrators while it
    has none; returns how many messages that is (none: nobody could answer it)."""
    coordinators = await queries.coordinators_of(session, barrio.id)
    by_coordination = _by_coordination(coordinators, admins)
    recipients = (
        [r for coordinator in coordinators for r in recipients_of(coordinator)]
        if by_coordination
        else await recipients_at(session, admins)
    )
    return await _enqueue_request(
        session, recipients, member, barrio, membership.id, now=now, zone=zone,
        for_admins=not by_coordination, unreached=bool(coordinators),
    )  # fmt: skip


async def _enqueue_request(
    session: AsyncSession,
    recipients: Sequence[Recipient],
    member: Member,
    barrio: Barrio,
    membership_id: int,
    *,
    now: datetime,
    zone: ZoneInfo,
    for_admins: bool,
    unreached: bool = False,
) -> int:
    """One join request with its buttons: a personal notice, which quiet hours do not hold,
    erased with the applicant."""
    text, buttons = join_request(
        member, barrio, membership_id, for_admins=for_admins, unreached=unreached
    )
    return await enqueue(
        session,
        recipients,
        text,
        now=now,
        zone=zone,
        options=buttons,
        priority=Priority.PERSONAL,
        about_member_id=member.id,
        barrio_id=barrio.id,
    )


async def forward_pending(
    session: AsyncSession, barrio: Barrio, coordinator: Member, *, now: datetime, zone: ZoneInfo
) -> int:
    """A barrio's first coordinator gets the requests still waiting (they reached nobody, or
    the administrators, before): a line saying why, then each request; returns how many
    requests."""
    pending = await queries.memberships_in(session, barrio.id, MembershipStatus.PENDING)
    if not pending:
        return 0
    header = texts.PENDING_FORWARDED.format(barrio=barrio.name, count=len(pending))
    await _queue_pending(
        session, recipients_of(coordinator), header, barrio, pending, now=now, zone=zone
    )
    return len(pending)


async def hand_over_pending(
    session: AsyncSession,
    barrio: Barrio,
    *,
    now: datetime,
    zone: ZoneInfo,
    admins: Sequence[tuple[str, str]],
) -> int:
    """A barrio whose last coordinator just went: the requests still waiting there go to the
    administrators, in their wording (as `ask_to_join` sends new ones), a line first saying
    why. Nothing while a coordinator is left, or without administrators; returns how many
    messages that is."""
    if not admins or await queries.coordinators_of(session, barrio.id):
        return 0
    pending = await queries.memberships_in(session, barrio.id, MembershipStatus.PENDING)
    if not pending:
        return 0
    header = texts.PENDING_ORPHANED.format(barrio=barrio.name, count=len(pending))
    recipients = await recipients_at(session, admins)
    return await _queue_pending(
        session, recipients, header, barrio, pending, now=now, zone=zone, for_admins=True
    )


async def _queue_pending(
    session: AsyncSession,
    recipients: Sequence[Recipient],
    header: str,
    barrio: Barrio,
    pending: Sequence[Membership],
    *,
    now: datetime,
    zone: ZoneInfo,
    for_admins: bool = False,
) -> int:
    """`header`, then the first requests of `pending`, each with its buttons (the rest wait
    in /miembros); returns how many messages that is."""
    shown = pending[:MAX_PENDING_SHOWN]
    if len(pending) > len(shown):
        header += texts.PENDING_FORWARDED_MORE.format(shown=len(shown))
    # The applicants wait on these: personal notices, which quiet hours do not hold.
    queued = await enqueue(
        session,
        recipients,
        header,
        now=now,
        zone=zone,
        priority=Priority.PERSONAL,
        barrio_id=barrio.id,
    )
    for request in shown:
        queued += await _enqueue_request(
            session, recipients, request.member, barrio, request.id, now=now, zone=zone,
            for_admins=for_admins,
        )  # fmt: skip
    return queued


async def on_button(turn: Turn, action: str, arg: str, note: str | None = None) -> bool:
    """A join request's `apr:ok:<membership id>` approves it; `apr:no:<id>` asks why before
    rejecting, and `apr:rj:<id>:<reason>` rejects it with that reason (`none`, or `other`
    with the `note` typed at the step `apr:tx:<id>` opens); `apr:keep:<id>` leaves it open.
    `apr:rl:<barrio id>` lists the requests the barrio turned down, and `apr:re:<id>` approves
    one of them after all (talked over, the coordination changed its mind)."""
    if action == "rl":
        return await _list_rejected(turn, parse_id(arg))
    id_text, _, reason = arg.partition(":")
    membership_id = parse_id(id_text)
    if action not in ACTIONS or membership_id is None or not _valid_reason(action, reason, note):
        turn.say(texts.INVALID_BUTTON)
        return True
    membership = await queries.membership_for_decision(turn.session, membership_id)
    allowed = {b.id for b in coordinated_barrios(turn.member)}
    if membership is None:
        turn.say(texts.REQUEST_GONE if allowed or turn.is_admin else texts.INVALID_BUTTON)
        return True
    # An administrator answers for any barrio (those without coordination ask them).
    if membership.barrio_id not in allowed and not turn.is_admin:
        turn.say(texts.COORDINATORS_ONLY)
        return True
    # What the request must still be for this button to decide it.
    undecided = MembershipStatus.REJECTED if action == "re" else MembershipStatus.PENDING
    if membership.status != undecided:
        turn.say(texts.ALREADY_DECIDED.format(status=texts.STATUS_WORDS[membership.status]))
        return True
    if action in ("no", "tx", "keep"):
        await _before_deciding(turn, action, membership)
        return True
    if action == "rjt":
        # "Sí, rechazar" under a typed reason: the reason is the one typed for this request.
        note = _typed_note(turn, membership.id)
        if note is None:
            turn.say(texts.STALE_BUTTON, main_menu(turn.member))
            return True
        reason = TYPED_REASON
    if turn.flow == FLOW:
        turn.finish()
    approved = action in ("ok", "re")
    status = MembershipStatus.ACTIVE if approved else MembershipStatus.REJECTED
    reason_kept = None if approved or reason == NO_REASON else reason
    # Conditional, so two coordinators tapping at once cannot both decide.
    decided = await queries.updated(
        turn.session,
        update(Membership)
        .where(Membership.id == membership.id, Membership.status == undecided)
        .values(
            status=status,
            decided_at=turn.now,
            rejection_reason=reason_kept,
            rejection_note=note if reason_kept == TYPED_REASON else None,
        )
        .execution_options(synchronize_session=False),
    )
    if not decided:
        await turn.session.refresh(membership)
        turn.say(texts.ALREADY_DECIDED.format(status=texts.STATUS_WORDS[membership.status]))
        return True
    member, barrio = membership.member, membership.barrio
    if approved:
        turn.say(texts.APPROVED_FOR_COORDINATOR.format(name=member.name, barrio=barrio.name))
        neighbours = await queries.directory_rubros(turn.session, [barrio.id], member.id)
        welcome = texts.APPROVED_FOR_MEMBER if neighbours else texts.APPROVED_FIRST_FOR_MEMBER
        await turn.notify(member, welcome.format(barrio=barrio.name), barrio_id=barrio.id)
    else:
        await _tell_rejection(turn, member, barrio, reason_kept, note)
    return True


async def _list_rejected(turn: Turn, barrio_id: int | None) -> bool:
    barrio = next((b for b in coordinated_barrios(turn.member) if b.id == barrio_id), None)
    if barrio is None:
        turn.say(texts.COORDINATORS_ONLY if barrio_id is not None else texts.INVALID_BUTTON)
        return True
    rejected = await queries.memberships_in(turn.session, barrio.id, MembershipStatus.REJECTED)
    if not rejected:
        say_menu(turn, texts.REJECTED_NONE.format(barrio=barrio.name))
        return True
    header = texts.REJECTED_HEADER.format(barrio=barrio.name, count=len(rejected))
    if len(rejected) > MAX_PENDING_SHOWN:
        header += texts.REJECTED_SHOWN.format(shown=MAX_PENDING_SHOWN)
    turn.say(header)
    # The latest decisions first: the one just talked over is most likely among them.
    latest = sorted(rejected, key=lambda m: m.decided_at or m.created_at, reverse=True)
    for request in latest[:MAX_PENDING_SHOWN]:
        member = request.member
        words = reason_words(request.rejection_reason, request.rejection_note)
        turn.say(
            texts.REJECTED_LINE.format(
                name=member.name,
                business=member.business_name,
                category=category_label(member.business_category),
                reason=words or texts.REJECTED_WITHOUT_REASON,
            ),
            [Option(texts.APPROVE_AFTER_ALL, f"apr:re:{request.id}")],
        )
    return True


def _valid_reason(action: str, reason: str, note: str | None) -> bool:
    if action != "rj":
        return reason == "" and note is None
    if reason == TYPED_REASON:
        return note is not None
    return note is None and (reason == NO_REASON or reason in texts.REJECTION_REASONS)


async def _before_deciding(turn: Turn, action: str, membership: Membership) -> None:
    """Rejecting asks why first (one tap on a reason rejects); the request stays open until
    then, and `keep` shows it again as it was."""
    member, barrio, membership_id = membership.member, membership.barrio, membership.id
    if turn.flow == FLOW or action == "tx":
        # Writing a reason is a step of its own, about one request: a tap about any request
        # ends the one under way, so a reason is never taken for somebody else's. Anything
        # else under way is left alone.
        turn.finish()
    if action == "no":
        reasons = [
            Option(label, f"{FLOW}:rj:{membership_id}:{key}")
            for key, label in texts.REJECTION_REASONS.items()
        ]
        turn.say(
            texts.REJECT_ASK_REASON.format(name=member.name, barrio=barrio.name),
            [
                *reasons,
                Option(texts.REJECT_WRITE_REASON, f"{FLOW}:tx:{membership_id}"),
                Option(texts.REJECT_WITHOUT_REASON, f"{FLOW}:rj:{membership_id}:{NO_REASON}"),
                Option(texts.REJECT_CALL_OFF, f"{FLOW}:keep:{membership_id}"),
            ],
        )
    elif action == "tx":
        turn.enter(FLOW, "reason", membership_id=membership_id)
        _ask_note(turn, member, membership_id)
    else:
        request, buttons = join_request(member, barrio, membership_id)
        turn.say(f"{texts.REQUEST_KEPT}\n\n{request}", buttons)


def _ask_note(turn: Turn, member: Member, membership_id: int) -> None:
    turn.say(
        texts.REJECT_ASK_NOTE.format(limit=MAX_NOTE, name=member.name),
        [Option(texts.REJECT_CALL_OFF, f"{FLOW}:keep:{membership_id}")],
    )


async def prompt(turn: Turn) -> None:
    membership_id = turn.data.get("membership_id")
    membership = (
        await queries.membership_for_decision(turn.session, membership_id)
        if isinstance(membership_id, int)
        else None
    )
    note = turn.data.get("note")
    if membership is None or membership.status != MembershipStatus.PENDING:
        turn.finish()
        turn.say(texts.REQUEST_GONE, main_menu(turn.member))
    elif turn.step == "confirm" and isinstance(note, str):
        _confirm_note(turn, membership, note)
    else:
        _ask_note(turn, membership.member, membership.id)


async def on_input(turn: Turn) -> None:
    """The reason typed after "Escribir otro motivo": shown back with the applicant's name
    before it rejects anyone, since the coordinator may have typed it some turns later."""
    membership_id = turn.data.get("membership_id")
    membership = (
        await queries.membership_for_decision(turn.session, membership_id)
        if isinstance(membership_id, int)
        else None
    )
    if membership is None or membership.status != MembershipStatus.PENDING:
        turn.finish()
        turn.say(texts.REQUEST_GONE, main_menu(turn.member))
        return
    note = read_text(turn, min_length=3, max_length=MAX_NOTE)
    if note is None:
        return
    turn.goto("confirm", note=note)
    _confirm_note(turn, membership, note)


def _confirm_note(turn: Turn, membership: Membership, note: str) -> None:
    turn.say(
        texts.REJECT_CONFIRM_NOTE.format(
            name=membership.member.name, barrio=membership.barrio.name, note=note
        ),
        [
            Option(texts.REJECT_CONFIRM_YES, f"{FLOW}:rjt:{membership.id}"),
            Option(texts.REJECT_REWRITE, f"{FLOW}:tx:{membership.id}"),
            Option(texts.REJECT_CALL_OFF, f"{FLOW}:keep:{membership.id}"),
        ],
    )


def _typed_note(turn: Turn, membership_id: int) -> str | None:
    """The reason typed for this request and waiting for its "Sí, rechazar"; else None."""
    note = turn.data.get("note")
    if (
        turn.flow != FLOW
        or turn.step != "confirm"
        or turn.data.get("membership_id") != membership_id
    ):
        return None
    return note if isinstance(note, str) else None


async def _tell_rejection(
    turn: Turn, member: Member, barrio: Barrio, reason: str | None, note: str | None
) -> None:
    """The coordinator hears what the applicant was told; the applicant, why, whom to talk
    to (the contacts the barrio's coordinators share) and a way into another barrio."""
    told = texts.REJECTED_NO_REASON_TOLD
    if reason == TYPED_REASON:
        told = texts.REJECTED_REASON_TOLD.format(reason=f"«{note}»")
    elif reason is not None:
        told = texts.REJECTED_REASON_TOLD.format(reason=texts.REJECTION_REASONS[reason])
    own = next(
        (
            m
            for m in (turn.member.memberships if turn.member is not None else [])
            if m.barrio_id == barrio.id
            and m.role == Role.COORDINATOR
            and m.status == MembershipStatus.ACTIVE
        ),
        None,
    )
    hint = texts.REJECTED_CONTACT_HINT if own is not None and own.contact is None else ""
    turn.say(
        texts.REJECTED_FOR_COORDINATOR.format(name=member.name, barrio=barrio.name) + told + hint,
        main_menu(turn.member),
    )
    contacts = await queries.barrio_contacts(turn.session, barrio.id)
    # An administrator answering for a barrio without coordination: the applicant was told
    # the Barrio Conecta team would review it, and hears it from the team.
    by_team = own is None
    words = rejection_text(barrio.name, reason, note, contacts, by_team=by_team)
    await turn.notify(
        member,
        f"{words}\n\n{texts.REJECTION_WAY_OUT}",
        [Option(texts.ASK_OTHER_BARRIO, ASK_ANOTHER_BARRIO)],
        barrio_id=barrio.id,
    )


def rejection_text(
    barrio: str,
    reason: str | None,
    note: str | None,
    contacts: Sequence[str],
    *,
    by_team: bool = False,
) -> str:
    """What a person turned down by `barrio` is told: why, if the coordinator said, and the
    coordination's contacts, if any was shared; `by_team`: the deployment's administrators
    decided, for a barrio without coordination."""
    first = texts.REJECTED_BY_TEAM if by_team else texts.REJECTED_FOR_MEMBER
    lines = [first.format(barrio=barrio)]
    words = reason_words(reason, note)
    if reason == TYPED_REASON and words:
        line = texts.REJECTION_TEAM_NOTE_LINE if by_team else texts.REJECTION_NOTE_LINE
        lines.append(line.format(note=words))
    elif words:
        lines.append(texts.REJECTION_REASON_LINE.format(reason=words))
    if contacts:
        lines.append(texts.REJECTION_CONTACT)
        lines += [texts.CONTACT_LINE.format(contact=contact) for contact in contacts]
    else:
        lines.append(texts.REJECTION_TEAM_NO_CONTACT if by_team else texts.REJECTION_NO_CONTACT)
    return "\n".join(lines)


async def list_members(turn: Turn, _args: str) -> None:
    if turn.is_admin and not coordinated_barrios(turn.member):
        await list_uncoordinated(turn, say_none=True)
        return
    for barrio in require_coordinator(turn):
        active = await queries.memberships_in(turn.session, barrio.id, MembershipStatus.ACTIVE)
        lines = [texts.MEMBERS_HEADER.format(barrio=barrio.name, count=len(active))]
        lines += [
            texts.MEMBERS_LINE.format(
                name=m.member.name,
                business=m.member.business_name,
                category=category_label(m.member.business_category),
            )
            for m in active[:MAX_LISTED]
        ]
        if len(active) > MAX_LISTED:
            lines.append(texts.MEMBERS_MORE.format(count=len(active) - MAX_LISTED))
        # Coordinators (this one included) are not removed from here.
        removable = any(m.role == Role.MEMBER for m in active)
        remove = [removal_option(barrio)] if removable else []
        # Last of all, so that the numbers typed for what comes before stay as they were.
        turned_down = await queries.count_memberships(
            turn.session, barrio.id, MembershipStatus.REJECTED
        )
        reconsider = (
            [Option(texts.REJECTED_LIST.format(count=turned_down), f"apr:rl:{barrio.id}")]
            if turned_down
            else []
        )
        pending = await queries.memberships_in(turn.session, barrio.id, MembershipStatus.PENDING)
        if not pending:
            # One message, so "1" is "Quitar a un socio" wherever the numbers are read.
            lines += ["", texts.PENDING_NONE.format(barrio=barrio.name)]
            turn.say("\n".join(lines), [*remove, *main_menu(turn.member), *reconsider])
            continue
        turn.say("\n".join(lines), remove)
        turn.say(texts.PENDING_HEADER.format(count=len(pending), barrio=barrio.name))
        for request in pending[:MAX_PENDING_SHOWN]:
            turn.say(*join_request(request.member, barrio, request.id))
        if reconsider:
            turn.say(texts.REJECTED_LIST_BELOW, reconsider)
    if turn.is_admin:
        await list_uncoordinated(turn, say_none=False)


async def list_uncoordinated(turn: Turn, *, say_none: bool) -> None:
    """An administrator's /miembros: the requests waiting in barrios without coordination,
    which only administrators can answer, a header per barrio; the first ones only."""
    pending = await queries.pending_without_coordination(turn.session)
    if not pending:
        if say_none:
            turn.say(texts.ADMIN_PENDING_NONE, main_menu(turn.member))
        return
    counts = Counter(request.barrio_id for request in pending)
    shown = pending[:MAX_PENDING_SHOWN]
    for index, request in enumerate(shown):
        barrio = request.barrio
        if index == 0 or shown[index - 1].barrio_id != barrio.id:
            turn.say(texts.PENDING_HEADER.format(count=counts[barrio.id], barrio=barrio.name))
        turn.say(*join_request(request.member, barrio, request.id, for_admins=True))
    if len(pending) > len(shown):
        turn.say(texts.ADMIN_PENDING_MORE.format(shown=len(shown), count=len(pending)))


def reason_words(reason: str | None, note: str | None) -> str | None:
    """A rejection's reason as the applicant reads it; None if none was given."""
    if reason == TYPED_REASON:
        return note
    return texts.REJECTION_REASON_WORDS.get(reason) if reason is not None else None
