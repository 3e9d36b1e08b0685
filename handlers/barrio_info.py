"""`/barrio`: the member's barrios, who coordinates them and how many belong, and the contact
each coordinator chooses to share with the barrio; for someone in no barrio, why, and a way in."""

from __future__ import annotations

from sqlalchemy import update

from handlers import texts
from handlers.approvals import rejection_text
from handlers.common import (
    ASK_ANOTHER_BARRIO,
    main_menu,
    require_member,
    without_barrio,
)
from handlers.core import InboundKind, Option, Turn, clean_line, has_letters, parse_id
from handlers.erasure import forget_contact
from handlers.removal import removal_text
from models import Member, Membership, MembershipStatus, Role, queries

FLOW = "brr"
MAX_CONTACT = 120
# A contact without letters must at least be a phone number.
MIN_CONTACT_DIGITS = 8


async def show(turn: Turn, _args: str = "") -> None:
    member = require_member(turn)
    if member is None:
        return
    current = [
        m
        for m in member.memberships
        if m.status in (MembershipStatus.ACTIVE, MembershipStatus.PENDING)
    ]
    if not current:
        await show_standing(turn, member, texts.NO_BARRIO)
        return
    for membership in current:
        barrio = membership.barrio
        count, coordinators = await queries.barrio_summary(turn.session, barrio.id)
        if membership.status == MembershipStatus.PENDING:
            status = texts.MEMBERSHIP_WORDS["pending"]
        elif membership.role == Role.COORDINATOR:
            status = texts.MEMBERSHIP_WORDS["coordinator"]
        else:
            status = texts.MEMBERSHIP_WORDS["active"]
        await _say_card(
            turn,
            membership,
            texts.BARRIO_CARD.format(
                name=barrio.name,
                comuna=barrio.comuna,
                region=barrio.region,
                count=count,
                coordinators=", ".join(coordinators) or texts.NO_COORDINATORS,
                status=status,
            ),
        )


async def _say_card(turn: Turn, membership: Membership, card: str) -> None:
    """The card with the coordination's contacts; a coordinator's, with the button to set
    their own."""
    contacts = await queries.barrio_contacts(turn.session, membership.barrio_id)
    if contacts:
        card += texts.BARRIO_CONTACTS.format(contacts=" · ".join(contacts))
    options = []
    if membership.role == Role.COORDINATOR and membership.status == MembershipStatus.ACTIVE:
        options.append(Option(texts.CONTACT_BUTTON, f"{FLOW}:contact:{membership.barrio_id}"))
    turn.say(card, options)


async def show_standing(turn: Turn, member: Member, header: str) -> None:
    """Someone in no barrio: which barrios said no or took them out, why and whom to talk to
    there, the ones they left, and the way into another (never back to this same answer)."""
    assert without_barrio(member)
    blocks = [header]
    rejected = False
    for membership in sorted(member.memberships, key=lambda m: m.id):
        barrio = membership.barrio
        if membership.status == MembershipStatus.REJECTED:
            rejected = True
            contacts = await queries.barrio_contacts(turn.session, barrio.id)
            reason, note = membership.rejection_reason, membership.rejection_note
            # With no coordination there, the Barrio Conecta team is who said no.
            by_team = not await queries.coordinators_of(turn.session, barrio.id)
            words = rejection_text(barrio.name, reason, note, contacts, by_team=by_team)
            blocks.append(f"❌ {words}")
        elif membership.status == MembershipStatus.REMOVED:
            # Its link will not ask again either: the way out is another barrio, as above.
            rejected = True
            contacts = await queries.barrio_contacts(turn.session, barrio.id)
            blocks.append(f"🚫 {removal_text(barrio.name, contacts)}")
        elif membership.status == MembershipStatus.LEFT:
            blocks.append(texts.BARRIO_LEFT_LINE.format(barrio=barrio.name))
    blocks.append(texts.REJECTION_WAY_OUT if rejected else texts.WAY_IN)
    turn.say(
        "\n\n".join(blocks),
        [
            Option(texts.ASK_OTHER_BARRIO if rejected else texts.ASK_A_BARRIO, ASK_ANOTHER_BARRIO),
            Option(texts.MENU_PROFILE, "menu:perfil"),
            Option(texts.MENU_HELP, "menu:ayuda"),
        ],
    )


# --- a coordinator's contact for the barrio ------------------------------------------------


def _coordinating(turn: Turn, barrio_id: object) -> Membership | None:
    member = turn.member
    return next(
        (
            m
            for m in (member.memberships if member is not None else [])
            if m.barrio_id == barrio_id
            and m.role == Role.COORDINATOR
            and m.status == MembershipStatus.ACTIVE
        ),
        None,
    )


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    """`brr:contact:<barrio id>` asks a coordinator for their contact, `brr:clear:<barrio id>`
    removes it, `brr:keep` leaves it as it was."""
    if action == "keep" and turn.flow == FLOW:
        turn.finish()
        turn.say(texts.KEPT, main_menu(turn.member))
        return True
    barrio_id = parse_id(arg)
    if action not in ("contact", "clear") or barrio_id is None:
        return False
    membership = _coordinating(turn, barrio_id)
    if membership is None:
        turn.say(texts.COORDINATORS_ONLY, main_menu(turn.member))
        return True
    turn.finish()
    if action == "contact":
        turn.enter(FLOW, "contact", barrio_id=barrio_id)
        await prompt(turn)
    else:
        await _save_contact(turn, membership, None)
    return True


async def prompt(turn: Turn) -> None:
    membership = _coordinating(turn, turn.data.get("barrio_id"))
    if membership is None:
        turn.finish()
        turn.say(texts.COORDINATORS_ONLY, main_menu(turn.member))
        return
    options = [Option(texts.CANCEL, f"{FLOW}:keep")]
    if membership.contact is not None:
        options.insert(0, Option(texts.CLEAR_VALUE, f"{FLOW}:clear:{membership.barrio_id}"))
    current = membership.contact or texts.CONTACT_NONE
    turn.say(texts.CONTACT_ASK.format(barrio=membership.barrio.name, current=current), options)


async def on_input(turn: Turn) -> None:
    contact = _read_contact(turn)
    if contact is None:
        return
    membership = _coordinating(turn, turn.data.get("barrio_id"))
    turn.finish()
    if membership is None:
        turn.say(texts.COORDINATORS_ONLY, main_menu(turn.member))
        return
    await _save_contact(turn, membership, contact)


def _read_contact(turn: Turn) -> str | None:
    """A phone or a short text; otherwise say why and return None."""
    if turn.inbound.kind in (InboundKind.MEDIA, InboundKind.LOCATION):
        turn.say(texts.TEXT_NEEDED)
        return None
    contact = clean_line(turn.inbound.text)
    digits = sum(ch.isascii() and ch.isdigit() for ch in contact)
    if len(contact) > MAX_CONTACT:
        turn.say(texts.TOO_LONG.format(limit=MAX_CONTACT))
    elif len(contact) < 3:
        turn.say(texts.TOO_SHORT.format(limit=3))
    elif not has_letters(contact) and digits < MIN_CONTACT_DIGITS:
        turn.say(texts.CONTACT_BAD)
    else:
        return contact
    return None


async def _save_contact(turn: Turn, membership: Membership, contact: str | None) -> None:
    before = membership.contact
    # Conditional: only while they still coordinate the barrio (they may have left meanwhile).
    saved = await queries.updated(
        turn.session,
        update(Membership)
        .where(
            Membership.id == membership.id,
            Membership.role == Role.COORDINATOR,
            Membership.status == MembershipStatus.ACTIVE,
        )
        .values(contact=contact)
        .execution_options(synchronize_session=False),
    )
    if not saved:
        turn.say(texts.COORDINATORS_ONLY, main_menu(turn.member))
        return
    await turn.session.refresh(membership, ["contact"])
    if before is not None and before != contact:
        await forget_contact(turn.session, before)
    barrio = membership.barrio.name
    if contact is None:
        turn.say(texts.CONTACT_CLEARED.format(barrio=barrio), main_menu(turn.member))
    else:
        turn.say(texts.CONTACT_SAVED.format(barrio=barrio, contact=contact), main_menu(turn.member))
