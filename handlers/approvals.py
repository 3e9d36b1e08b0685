"""Coordinators approve or reject join requests, and list their barrio's members (`/miembros`)."""

from __future__ import annotations

from sqlalchemy import update

from handlers import texts
from handlers.common import category_label, coordinated_barrios, main_menu, require_coordinator
from handlers.core import Option, Turn, parse_id
from models import Barrio, Member, Membership, MembershipStatus, queries

MAX_LISTED = 40
MAX_PENDING_SHOWN = 10


def join_request(member: Member, barrio: Barrio, membership_id: int) -> tuple[str, list[Option]]:
    """The question a coordinator gets about one pending member, with its two buttons."""
    text = texts.JOIN_REQUEST.format(
        barrio=barrio.name,
        name=member.name,
        business=member.business_name,
        category=category_label(member.business_category),
    )
    return text, [
        Option(texts.APPROVE, f"apr:ok:{membership_id}"),
        Option(texts.REJECT, f"apr:no:{membership_id}"),
    ]


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    """`apr:ok:<membership id>` / `apr:no:<membership id>` from a join request."""
    membership_id = parse_id(arg)
    if action not in ("ok", "no") or membership_id is None:
        turn.say(texts.INVALID_BUTTON)
        return True
    membership = await queries.membership_for_decision(turn.session, membership_id)
    allowed = {b.id for b in coordinated_barrios(turn.member)}
    if membership is None:
        turn.say(texts.REQUEST_GONE if allowed else texts.INVALID_BUTTON)
        return True
    if membership.barrio_id not in allowed:
        turn.say(texts.COORDINATORS_ONLY)
        return True
    if membership.status != MembershipStatus.PENDING:
        turn.say(texts.ALREADY_DECIDED.format(status=texts.STATUS_WORDS[membership.status]))
        return True
    approved = action == "ok"
    status = MembershipStatus.ACTIVE if approved else MembershipStatus.REJECTED
    # Conditional, so two coordinators tapping at once cannot both decide.
    decided = await queries.updated(
        turn.session,
        update(Membership)
        .where(Membership.id == membership.id, Membership.status == MembershipStatus.PENDING)
        .values(status=status, decided_at=turn.now)
        .execution_options(synchronize_session=False),
    )
    if not decided:
        await turn.session.refresh(membership)
        turn.say(texts.ALREADY_DECIDED.format(status=texts.STATUS_WORDS[membership.status]))
        return True
    member, barrio = membership.member, membership.barrio
    if approved:
        turn.say(texts.APPROVED_FOR_COORDINATOR.format(name=member.name, barrio=barrio.name))
        await turn.notify(
            member, texts.APPROVED_FOR_MEMBER.format(barrio=barrio.name), barrio_id=barrio.id
        )
    else:
        turn.say(texts.REJECTED_FOR_COORDINATOR.format(name=member.name, barrio=barrio.name))
        await turn.notify(
            member, texts.REJECTED_FOR_MEMBER.format(barrio=barrio.name), barrio_id=barrio.id
        )
    return True


async def list_members(turn: Turn, _args: str) -> None:
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
        turn.say("\n".join(lines))

        pending = await queries.memberships_in(turn.session, barrio.id, MembershipStatus.PENDING)
        if not pending:
            turn.say(texts.PENDING_NONE.format(barrio=barrio.name), main_menu(turn.member))
            continue
        turn.say(texts.PENDING_HEADER.format(count=len(pending), barrio=barrio.name))
        for request in pending[:MAX_PENDING_SHOWN]:
            turn.say(*join_request(request.member, barrio, request.id))
