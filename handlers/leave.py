"""`/baja`: leave one barrio, or erase every piece of personal data, always after a confirmation."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, update

from handlers import texts
from handlers.common import coordinated_barrios, main_menu, require_member
from handlers.core import Option, Turn, parse_id
from handlers.erasure import erase_member, forget_contact
from handlers.reminders import barrio_zone
from models import Barrio, Membership, MembershipStatus, Role, queries

FLOW = "baja"
# Where a word or two typed may pick an option (handlers/dialogue.py `_options_fitting`).
CHOICE_STEPS = frozenset({"choose"})


async def begin(turn: Turn, _args: str = "") -> None:
    member = require_member(turn)
    if member is None:
        return
    turn.finish()
    turn.enter(FLOW, "choose")
    await prompt(turn)


def _current(turn: Turn) -> list[Membership]:
    assert turn.member is not None
    return [
        m
        for m in turn.member.memberships
        if m.status in (MembershipStatus.ACTIVE, MembershipStatus.PENDING)
    ]


async def prompt(turn: Turn) -> None:
    if turn.step == "choose":
        options = [
            Option(texts.LEAVE_BARRIO.format(barrio=m.barrio.name), f"{FLOW}:leave:{m.id}")
            for m in _current(turn)
        ]
        options += [Option(texts.ERASE_ALL, f"{FLOW}:erase"), Option(texts.KEEP, f"{FLOW}:keep")]
        turn.say(texts.LEAVE_ASK, options)
    elif turn.step == "confirm_leave":
        membership = _membership(turn, turn.data.get("membership_id"))
        barrio = membership.barrio.name if membership else ""
        turn.say(
            texts.LEAVE_CONFIRM.format(barrio=barrio),
            [Option(texts.YES_LEAVE, f"{FLOW}:yes"), Option(texts.NO_KEEP, f"{FLOW}:keep")],
        )
    elif turn.step == "confirm_erase":
        turn.say(
            texts.ERASE_CONFIRM,
            [Option(texts.YES_ERASE, f"{FLOW}:yes"), Option(texts.NO_KEEP, f"{FLOW}:keep")],
        )


async def on_input(turn: Turn) -> None:
    turn.say(texts.CHOOSE_FROM_OPTIONS)
    await prompt(turn)


def _membership(turn: Turn, membership_id: object) -> Membership | None:
    return next((m for m in _current(turn) if m.id == membership_id), None)


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    if turn.flow != FLOW or turn.member is None:
        return False
    if action == "keep":
        turn.finish()
        turn.say(texts.KEPT, main_menu(turn.member))
        return True
    if turn.step == "choose" and action == "leave":
        membership = _membership(turn, parse_id(arg))
        if membership is None:
            return False
        turn.goto("confirm_leave", membership_id=membership.id)
        await prompt(turn)
        return True
    if turn.step == "choose" and action == "erase":
        turn.goto("confirm_erase")
        await prompt(turn)
        return True
    if turn.step == "confirm_leave" and action == "yes":
        membership = _membership(turn, turn.data.get("membership_id"))
        # Active first, then pending, each a conditional UPDATE: what the row was when it
        # changed (an approval may land meanwhile) decides whether coordinators are told.
        was_active = membership is not None and await end_membership(
            turn, membership, MembershipStatus.ACTIVE
        )
        left = was_active or (
            membership is not None
            and await end_membership(turn, membership, MembershipStatus.PENDING)
        )
        if membership is None or not left:
            # Decided meanwhile (a coordinator rejected it): show what is left to leave.
            turn.goto("choose")
            await prompt(turn)
            return True
        # The UPDATE bypassed the loaded row; the menu below must see the person has left.
        await turn.session.refresh(membership, ["status", "role", "decided_at"])
        await _after_leaving(turn, membership, was_active=was_active)
        turn.finish()
        turn.say(texts.LEFT.format(barrio=membership.barrio.name), main_menu(turn.member))
        return True
    if turn.step == "confirm_erase" and action == "yes":
        await _erase(turn)
        return True
    return False


async def end_membership(
    turn: Turn,
    membership: Membership,
    status: MembershipStatus,
    *also: ColumnElement[bool],
    ending: MembershipStatus = MembershipStatus.LEFT,
) -> bool:
    """The membership, if it is still `status` (and `also` holds), ends now as `ending`, and
    nothing more of the barrio queued for the person (nor to its coordinators about them)
    goes out. Leaving and being removed by a coordinator (handlers/removal.py, REMOVED) end
    the same way; the barrio's last coordinator leaving hands its waiting requests to the
    administrators. A conditional UPDATE: True if this call changed it."""
    ended = await queries.updated(
        turn.session,
        update(Membership)
        .where(Membership.id == membership.id, Membership.status == status, *also)
        # A coordinator's contact for the barrio goes with the role.
        .values(status=ending, role=Role.MEMBER, decided_at=turn.now, contact=None)
        .execution_options(synchronize_session=False),
    )
    if ended:
        await queries.withdraw_queued(turn.session, membership.member_id, membership.barrio_id)
        if membership.contact is not None:
            # Not shared any more: out of the notices that quoted it, too.
            await forget_contact(turn.session, membership.contact)
        # The role as this turn loaded it: the UPDATE above has just made it "member".
        if membership.role == Role.COORDINATOR:
            await hand_over_requests(turn, [membership.barrio])
    return ended


async def hand_over_requests(turn: Turn, barrios: Sequence[Barrio]) -> None:
    """Each of these barrios that has just lost its last coordinator (they left, stopped
    coordinating or erased their data) sends the requests still waiting there to the
    administrators, who answer for barrios without coordination (`approvals.join_route`)."""
    # Not at the top: approvals imports removal, which imports this module.
    from handlers.approvals import hand_over_pending

    for barrio in barrios:
        turn.enqueued += await hand_over_pending(
            turn.session,
            barrio,
            now=turn.now,
            zone=barrio_zone(barrio, turn.default_zone),
            admins=turn.admins,
        )


async def _after_leaving(turn: Turn, membership: Membership, *, was_active: bool) -> None:
    """Its coordinators know. Someone whose request was still open is no news to them: the
    request just went (`end_membership`)."""
    member, barrio = membership.member, membership.barrio
    if not was_active:
        return
    notice = texts.MEMBER_LEFT_FOR_COORDINATOR.format(name=member.name, barrio=barrio.name)
    for coordinator in await queries.coordinators_of(turn.session, barrio.id):
        if coordinator.id != member.id:
            await turn.notify(coordinator, notice, about=member, barrio_id=barrio.id)


async def _erase(turn: Turn) -> None:
    """Every trace of the member goes (handlers/erasure.py says what that means per table)."""
    member = turn.member
    assert member is not None
    barrios = len(member.memberships)
    coordinated = coordinated_barrios(member)
    # Where they were a member, its coordinators know; those who had only asked are no news.
    told = [
        (barrio, coordinator)
        for barrio in [m.barrio for m in member.memberships if m.status == MembershipStatus.ACTIVE]
        for coordinator in await queries.coordinators_of(turn.session, barrio.id)
        if coordinator.id != member.id
    ]
    await erase_member(turn.session, member)
    await hand_over_requests(turn, coordinated)
    for barrio, coordinator in told:
        notice = texts.MEMBER_ERASED_FOR_COORDINATOR.format(barrio=barrio.name)
        await turn.notify(coordinator, notice, barrio_id=barrio.id)
    if turn.conversation in turn.session:
        # Its row is gone already; nothing of it may be written back.
        turn.session.expunge(turn.conversation)
    turn.member = None
    turn.forget = True
    turn.say(texts.ERASED.format(count=barrios))
