"""Erasure ("Sí, borrar todo" in `/baja`): what happens to each table, in the turn's transaction.

The README's "Datos personales" section lists the same, table by table; keep the two together.

- `members`, `channel_identities`, `memberships`, `rsvps`: the rows are deleted (CASCADE).
- `conversations`: the person's own rows are deleted. In anyone else's, the options last
  offered that name them (a coordinator's removal list) go; a join request's say "Aprobar".
- `deliveries`: messages to them or about them are deleted (CASCADE, and by address for those
  sent before they registered); copies of an alert they raised keep only who got them (so
  closing the alert still tells those people), not its words, and unsent copies are dropped.
- `security_alerts`: kind, barrio and times stay for the barrio's record, without author,
  description or location.
- `announcements`, `meetings`, `funding_calls` they wrote stay, as the barrio's content,
  without their author.
- `inbound_updates`: payloads are emptied when each turn is handled, so nothing is left there.
- A coordinator's contact for their barrio lives on their membership (deleted with it); the
  rejection notices that quoted it, to other people, keep a dash in its place, as soon as
  they stop sharing it (`forget_contact`), and so do the `/misdatos` copies of other people
  waiting in `shared_files` for WhatsApp to fetch them.
"""

from __future__ import annotations

import json

from sqlalchemy import Text, cast, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from handlers.core import OFFERED
from models import (
    ChannelIdentity,
    Conversation,
    Delivery,
    DeliveryStatus,
    Member,
    Membership,
    SecurityAlert,
    SharedFile,
)


async def erase_member(session: AsyncSession, member: Member) -> None:
    """Delete every trace of `member`. Their own conversation rows are deleted here, in SQL:
    the caller must not write back a loaded one (`Turn.forget`)."""
    addresses = [
        (channel, external_id)
        for channel, external_id in await session.execute(
            select(ChannelIdentity.channel, ChannelIdentity.external_id).where(
                ChannelIdentity.member_id == member.id
            )
        )
    ]
    await _anonymise_alerts(session, member.id)
    await _forget_contacts(session, member.id)
    await _forget_offered(session, member.id)
    if addresses:
        await session.execute(
            delete(Delivery).where(tuple_(Delivery.channel, Delivery.recipient).in_(addresses))
        )
        await session.execute(
            delete(Conversation).where(
                tuple_(Conversation.channel, Conversation.external_id).in_(addresses)
            )
        )
    await session.delete(member)
    await session.flush()


async def _anonymise_alerts(session: AsyncSession, member_id: int) -> None:
    raised = (
        await session.scalars(select(SecurityAlert.id).where(SecurityAlert.author_id == member_id))
    ).all()
    if not raised:
        return
    copies = [f"alert:{alert_id}" for alert_id in raised]
    await session.execute(
        delete(Delivery).where(
            Delivery.broadcast.in_(copies), Delivery.status == DeliveryStatus.PENDING
        )
    )
    await session.execute(
        update(Delivery).where(Delivery.broadcast.in_(copies)).values(text="", options=[])
    )
    await session.execute(
        update(SecurityAlert)
        .where(SecurityAlert.id.in_(raised))
        .values(author_id=None, description="", latitude=None, longitude=None)
    )


async def _forget_contacts(session: AsyncSession, member_id: int) -> None:
    """The contacts they shared as a coordinator leave the notices sent to others."""
    shared = (
        await session.scalars(
            select(Membership.contact).where(
                Membership.member_id == member_id, Membership.contact.is_not(None)
            )
        )
    ).all()
    for contact in shared:
        if contact is not None:
            await forget_contact(session, contact)


async def forget_contact(session: AsyncSession, contact: str) -> None:
    """A contact a coordinator no longer shares (changed, removed, no longer coordinating,
    erased) leaves the notices that quoted it to others: kept for weeks, they would hold it
    past its owner's erasure."""
    erased = texts.CONTACT_LINE.format(contact=texts.CONTACT_ERASED) + "\n"
    # As the notices quote it, a whole line, so that a short one ("Ana") leaves the rest of
    # anyone's messages alone.
    quoted = texts.CONTACT_LINE.format(contact=contact) + "\n"
    await session.execute(
        update(Delivery)
        .where(Delivery.text.contains(quoted, autoescape=True))
        .values(text=func.replace(Delivery.text, quoted, erased))
    )
    await _forget_in_data_files(session, contact)


async def _forget_in_data_files(session: AsyncSession, contact: str) -> None:
    """Someone's `/misdatos` copy waiting for WhatsApp to fetch it (an hour at most) quotes the
    contact if it is in a rejection they were told of: it goes; they can ask again."""
    # As `handlers/mydata.py` writes it into the JSON. A short contact may match more than
    # it quotes: such a file only goes early.
    quoted = json.dumps(contact, ensure_ascii=False)[1:-1].encode()
    held = await session.execute(
        select(SharedFile.id, SharedFile.content).where(SharedFile.member_id.is_not(None))
    )
    quoting = [file_id for file_id, content in held if quoted in content]
    if quoting:
        await session.execute(delete(SharedFile).where(SharedFile.id.in_(quoting)))


async def _forget_offered(session: AsyncSession, member_id: int) -> None:
    """Buttons naming them kept in other people's conversations, so that a typed number
    works (`handlers/dialogue.py`): a coordinator's removal list ("Beto · Bazar Beto")."""
    from handlers.removal import PICK, pick_payload  # removal ends memberships through here

    naming = {
        pick_payload(membership_id)
        for membership_id in await session.scalars(
            select(Membership.id).where(Membership.member_id == member_id)
        )
    }
    if not naming:
        return
    holding = await session.scalars(
        select(Conversation).where(cast(Conversation.data, Text).contains(PICK, autoescape=True))
    )
    for conversation in holding:
        offered = conversation.data.get(OFFERED) or []
        kept = [option for option in offered if option[1] not in naming]
        if len(kept) != len(offered):
            conversation.data = {**conversation.data, OFFERED: kept}
    await session.flush()
