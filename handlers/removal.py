"""A coordinator removes a member of their barrio, from `/miembros`: pick, confirm, done.

The buttons carry what they are about (a barrio and a page, or a membership) and hold no
conversation state: every tap checks again that the one tapping coordinates that barrio and
that the person is still one of its plain members, so a stale or forged button is answered,
never obeyed. Removing ends the membership the way leaving does (`leave.end_membership`),
as REMOVED: the barrio's link and the barrio list do not ask that barrio again.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers import texts
from handlers.common import ASK_ANOTHER_BARRIO, coordinated_barrios, say_menu
from handlers.core import Option, Turn, parse_id
from handlers.leave import end_membership
from models import Barrio, Membership, MembershipStatus, Role, queries

PREFIX = "rmv"
PAGE_SIZE = 8
MAX_PAGE_DIGITS = 4


# The button that names a member on a coordinator's removal list: erasure looks for it in
# other people's conversations.
PICK = f"{PREFIX}:pick:"


def pick_payload(membership_id: int) -> str:
    return f"{PICK}{membership_id}"


def removal_option(barrio: Barrio) -> Option:
    """The button `/miembros` shows under a barrio's members."""
    return Option(texts.REMOVE_MEMBER, f"{PREFIX}:list:{barrio.id}:0")


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    """`rmv:list:<barrio id>:<page>`, `rmv:pick:<membership id>`, `rmv:yes:<membership id>`,
    `rmv:keep`."""
    if action == "list":
        await _pick(turn, arg)
    elif action == "pick":
        membership = await _removable(turn, arg)
        if membership is not None:
            turn.say(
                texts.REMOVE_CONFIRM.format(
                    name=membership.member.name, barrio=membership.barrio.name
                ),
                [
                    Option(texts.YES_REMOVE, f"{PREFIX}:yes:{membership.id}"),
                    Option(texts.NO_KEEP, f"{PREFIX}:keep"),
                ],
            )
    elif action == "yes":
        membership = await _removable(turn, arg)
        if membership is not None:
            await _remove(turn, membership)
    elif action == "keep":
        say_menu(turn, texts.REMOVE_KEPT)
    else:
        turn.say(texts.INVALID_BUTTON)
    return True


async def _pick(turn: Turn, arg: str) -> None:
    """One page of the barrio's plain members, each a button."""
    barrio_text, _, page_text = arg.partition(":")
    barrio_id = parse_id(barrio_text)
    if barrio_id is None or not (page_text.isascii() and page_text.isdigit()):
        turn.say(texts.INVALID_BUTTON)
        return
    barrio = next((b for b in coordinated_barrios(turn.member) if b.id == barrio_id), None)
    if barrio is None or turn.member is None:
        say_menu(turn, texts.COORDINATORS_ONLY)
        return
    me = turn.member.id
    active = await queries.memberships_in(turn.session, barrio.id, MembershipStatus.ACTIVE)
    removable = [m for m in active if m.role == Role.MEMBER and m.member_id != me]
    if not removable:
        say_menu(turn, texts.REMOVE_NONE.format(barrio=barrio.name))
        return
    pages = -(-len(removable) // PAGE_SIZE)
    # A page past the end (members removed since the button was sent) shows the last one.
    page = min(int(page_text[:MAX_PAGE_DIGITS]), pages - 1)
    options = [
        Option(
            texts.REMOVE_PICK_LINE.format(name=m.member.name, business=m.member.business_name),
            pick_payload(m.id),
        )
        for m in removable[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    ]
    if page > 0:
        options.append(Option(texts.PAGE_PREVIOUS, f"{PREFIX}:list:{barrio.id}:{page - 1}"))
    if page < pages - 1:
        options.append(Option(texts.PAGE_NEXT, f"{PREFIX}:list:{barrio.id}:{page + 1}"))
    options.append(Option(texts.KEEP, f"{PREFIX}:keep"))
    header = texts.REMOVE_PICK.format(barrio=barrio.name)
    if pages > 1:
        header += texts.PAGE_OF.format(page=page + 1, pages=pages)
    turn.say(header, options)


async def _removable(turn: Turn, arg: str) -> Membership | None:
    """The membership a button names, if the one tapping may remove it; else say why."""
    membership_id = parse_id(arg)
    if membership_id is None:
        turn.say(texts.INVALID_BUTTON)
        return None
    coordinated = {b.id for b in coordinated_barrios(turn.member)}
    if turn.member is None or not coordinated:
        say_menu(turn, texts.COORDINATORS_ONLY)
        return None
    membership = await queries.membership_for_decision(turn.session, membership_id)
    if membership is None:
        say_menu(turn, texts.REMOVE_GONE)
    elif membership.barrio_id not in coordinated:
        say_menu(turn, texts.COORDINATORS_ONLY)
    elif membership.member_id == turn.member.id:
        say_menu(turn, texts.REMOVE_SELF)
    elif membership.status != MembershipStatus.ACTIVE:
        say_menu(
            turn,
            texts.REMOVE_NOT_ACTIVE.format(
                name=membership.member.name, barrio=membership.barrio.name
            ),
        )
    elif membership.role == Role.COORDINATOR:
        say_menu(turn, texts.REMOVE_COORDINATOR.format(name=membership.member.name))
    else:
        return membership
    return None


async def _remove(turn: Turn, membership: Membership) -> None:
    member, barrio = membership.member, membership.barrio
    # Conditional on the role too: promoted meanwhile, a coordinator is not removed here.
    removed = await end_membership(
        turn,
        membership,
        MembershipStatus.ACTIVE,
        Membership.role == Role.MEMBER,
        ending=MembershipStatus.REMOVED,
    )
    if not removed:
        await turn.session.refresh(membership, ["status", "role", "decided_at"])
        if membership.status == MembershipStatus.ACTIVE and membership.role == Role.COORDINATOR:
            say_menu(turn, texts.REMOVE_COORDINATOR.format(name=member.name))
        else:
            say_menu(turn, texts.REMOVE_NOT_ACTIVE.format(name=member.name, barrio=barrio.name))
        return
    assert turn.member is not None
    # Without the barrio: it is no longer theirs, and nothing may withdraw this notice.
    contacts = await queries.barrio_contacts(turn.session, barrio.id)
    await turn.notify(
        member,
        f"{removal_text(barrio.name, contacts)}\n{texts.REMOVED_NO_MORE_NOTICES}\n\n"
        f"{texts.REJECTION_WAY_OUT}",
        [Option(texts.ASK_OTHER_BARRIO, ASK_ANOTHER_BARRIO)],
    )
    notice = texts.MEMBER_REMOVED_FOR_COORDINATORS.format(name=member.name, barrio=barrio.name)
    for coordinator in await queries.coordinators_of(turn.session, barrio.id):
        if coordinator.id != turn.member.id:
            await turn.notify(coordinator, notice, about=member, barrio_id=barrio.id)
    say_menu(turn, texts.REMOVED_DONE.format(name=member.name, barrio=barrio.name))


def removal_text(barrio: str, contacts: Sequence[str], *, asked_again: bool = False) -> str:
    """What someone the coordination of `barrio` removed is told when they come back to it
    (/barrio, its link: `asked_again`, and no request goes): that, and whom to talk to."""
    said = texts.REMOVED_FROM_BARRIO.format(barrio=barrio)
    lines = [f"{said} {texts.REMOVED_NO_REQUEST}" if asked_again else said]
    if contacts:
        lines.append(texts.REJECTION_CONTACT)
        lines += [texts.CONTACT_LINE.format(contact=contact) for contact in contacts]
    else:
        lines.append(texts.REJECTION_NO_CONTACT)
    return "\n".join(lines)
