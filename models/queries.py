"""Queries the dialogue and the admin commands share. They take a session and never commit."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Update, bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from models.entities import (
    Barrio,
    ChannelIdentity,
    Conversation,
    Delivery,
    DeliveryStatus,
    Member,
    Membership,
    MembershipStatus,
    Role,
)


async def member_by_identity(
    session: AsyncSession, channel: str, external_id: str
) -> Member | None:
    """The person behind a channel address with their memberships and barrios, in one query."""
    member, _unreachable = await _identified(session, channel, external_id)
    return member


async def _identified(
    session: AsyncSession, channel: str, external_id: str
) -> tuple[Member | None, bool]:
    """The member behind a channel address, and whether that address is marked unreachable."""
    result = await session.execute(
        select(Member, ChannelIdentity.unreachable_at)
        .join(ChannelIdentity)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
        .options(joinedload(Member.memberships).joinedload(Membership.barrio))
    )
    row = result.unique().one_or_none()
    return (row[0], row[1] is not None) if row is not None else (None, False)


# How many of a member's latest deliveries are looked at for the newest one with options.
NOTICES_LOOKED_AT = 10


# Statements that run for (nearly) every inbound message are built once, with bind parameters:
# building one, and its cache key, costs more CPU than SQLite takes to run it.
_SENDER_STATE = (
    select(Conversation, Member, ChannelIdentity.unreachable_at)
    .outerjoin(
        ChannelIdentity,
        (ChannelIdentity.channel == Conversation.channel)
        & (ChannelIdentity.external_id == Conversation.external_id),
    )
    .outerjoin(Member, Member.id == ChannelIdentity.member_id)
    .where(
        Conversation.channel == bindparam("channel"),
        Conversation.external_id == bindparam("external_id"),
    )
    .options(joinedload(Member.memberships).joinedload(Membership.barrio))
)
_ACTIVE_MEMBER_COUNT = (
    select(func.count())
    .select_from(Membership)
    .where(
        Membership.barrio_id == bindparam("barrio_id"),
        Membership.status == MembershipStatus.ACTIVE,
    )
)
_COORDINATOR_NAMES = (
    select(Member.name)
    .join(Membership)
    .where(
        Membership.barrio_id == bindparam("barrio_id"),
        Membership.role == Role.COORDINATOR,
        Membership.status == MembershipStatus.ACTIVE,
    )
    .order_by(Member.name)
)


async def sender_state(
    session: AsyncSession, channel: str, external_id: str
) -> tuple[Conversation, Member | None, bool]:
    """The conversation, the member behind one channel address if registered, and whether
    that address is marked unreachable (it just wrote, so it no longer is).

    Runs for every inbound message, so the usual case (a stored conversation) is one query;
    an address with no conversation row yet costs a second one for the member.
    """
    result = await session.execute(_SENDER_STATE, {"channel": channel, "external_id": external_id})
    row = result.unique().one_or_none()
    if row is not None:
        return row[0], row[1], row[2] is not None
    conversation = Conversation(channel=channel, external_id=external_id, data={})
    member, unreachable = await _identified(session, channel, external_id)
    return conversation, member, unreachable


async def updated(session: AsyncSession, statement: Update) -> bool:
    """Run a conditional UPDATE; True if it changed a row. Of two people acting on the same
    thing at once (two coordinators tapping "Aprobar"), exactly one gets True."""
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def mark_reachable(session: AsyncSession, channel: str, external_id: str) -> None:
    await session.execute(
        update(ChannelIdentity)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
        .values(unreachable_at=None)
    )


async def barrio_by_invite(session: AsyncSession, code: str) -> Barrio | None:
    return await session.scalar(select(Barrio).where(Barrio.invite_code == code.strip().upper()))


async def barrio_by_slug(session: AsyncSession, slug: str) -> Barrio | None:
    return await session.scalar(select(Barrio).where(Barrio.slug == slug))


async def all_barrios(session: AsyncSession) -> Sequence[Barrio]:
    return (
        await session.scalars(select(Barrio).order_by(Barrio.region, Barrio.comuna, Barrio.name))
    ).all()


async def coordinators_of(session: AsyncSession, barrio_id: int) -> Sequence[Member]:
    return (
        await session.scalars(
            select(Member)
            .join(Membership)
            .where(
                Membership.barrio_id == barrio_id,
                Membership.role == Role.COORDINATOR,
                Membership.status == MembershipStatus.ACTIVE,
            )
            .order_by(Member.name)
            .options(selectinload(Member.identities))
        )
    ).all()


async def coordinator_counts(session: AsyncSession) -> dict[int, int]:
    """Active coordinators per barrio id; a barrio without any is not in it."""
    rows = await session.execute(
        select(Membership.barrio_id, func.count())
        .where(
            Membership.role == Role.COORDINATOR,
            Membership.status == MembershipStatus.ACTIVE,
        )
        .group_by(Membership.barrio_id)
    )
    return {barrio_id: count for barrio_id, count in rows.all()}


async def active_member_count(session: AsyncSession, barrio_id: int) -> int:
    count = await session.scalar(_ACTIVE_MEMBER_COUNT, {"barrio_id": barrio_id})
    return int(count or 0)


async def memberships_in(
    session: AsyncSession, barrio_id: int, status: MembershipStatus
) -> Sequence[Membership]:
    return (
        await session.scalars(
            select(Membership)
            .join(Member)
            .where(Membership.barrio_id == barrio_id, Membership.status == status)
            .order_by(Member.name, Member.id)
            .options(selectinload(Membership.member))
        )
    ).all()


async def count_memberships(session: AsyncSession, barrio_id: int, status: MembershipStatus) -> int:
    found = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.barrio_id == barrio_id, Membership.status == status)
    )
    return int(found or 0)


async def pending_without_coordination(session: AsyncSession) -> Sequence[Membership]:
    """The open join requests of barrios with no active coordinator (the administrators
    answer those), barrio by barrio, with their member and barrio."""
    coordinated = select(Membership.barrio_id).where(
        Membership.role == Role.COORDINATOR, Membership.status == MembershipStatus.ACTIVE
    )
    return (
        await session.scalars(
            select(Membership)
            .join(Member, Member.id == Membership.member_id)
            .join(Barrio, Barrio.id == Membership.barrio_id)
            .where(
                Membership.status == MembershipStatus.PENDING,
                Membership.barrio_id.not_in(coordinated),
            )
            .order_by(Barrio.region, Barrio.comuna, Barrio.name, Barrio.id, Member.name, Member.id)
            .options(selectinload(Membership.member), selectinload(Membership.barrio))
        )
    ).all()


class DirectoryEntry(NamedTuple):
    """One listed business, with only what its owner agreed to show (None otherwise)."""

    business_name: str
    name: str
    business_category: str
    phone: str | None
    address: str | None


async def directory_members(
    session: AsyncSession,
    barrio_ids: Sequence[int],
    exclude_member_id: int,
    *,
    text: str | None = None,
    categories: Sequence[str] = (),
    limit: int,
    offset: int = 0,
) -> tuple[int, list[DirectoryEntry]]:
    """Members who chose to be listed and are active in any of these barrios, matching the
    folded `text` (name or business) or one of `categories`, or all of them without either;
    returns (total, `limit` of them from `offset` on, in a stable order). Past the end the
    total is 0 too: no row carries it.

    One statement: the total rides on every row as a window count, and only the shown
    columns are read (a hidden phone never leaves the database)."""
    params: dict[str, object] = {
        "barrio_ids": list(barrio_ids),
        "exclude_member_id": exclude_member_id,
        "limit": limit,
        "offset": offset,
    }
    if text:
        params["pattern"] = f"%{_escape_like(text)}%"
    if categories:
        params["categories"] = list(categories)
    query = _directory_query(by_text=bool(text), by_categories=bool(categories))
    rows = (await session.execute(query, params)).all()
    total = rows[0][-1] if rows else 0
    return int(total), [DirectoryEntry(*row[:-1]) for row in rows]


async def directory_rubros(
    session: AsyncSession, barrio_ids: Sequence[int], exclude_member_id: int
) -> set[str]:
    """The rubros someone listed in these barrios has: the only ones worth a button."""
    listed = _directory_query(by_text=False, by_categories=False).whereclause
    assert listed is not None
    rows = await session.scalars(
        select(Member.business_category).where(listed).distinct(),
        {"barrio_ids": list(barrio_ids), "exclude_member_id": exclude_member_id},
    )
    return set(rows)


@functools.cache
def _directory_query(*, by_text: bool, by_categories: bool) -> Select[Any]:
    """Built once per shape (by text, by rubro, both): a directory search runs often, and
    building its statement anew took longer than SQLite takes to run it."""
    listed = (
        select(Membership.member_id)
        .where(
            Membership.barrio_id.in_(bindparam("barrio_ids", expanding=True)),
            Membership.status == MembershipStatus.ACTIVE,
        )
        .scalar_subquery()
    )
    conditions = [
        Member.id.in_(listed),
        Member.show_in_directory.is_(True),
        Member.id != bindparam("exclude_member_id"),
    ]
    matches = []
    if by_text:
        matches.append(Member.search_text.like(bindparam("pattern"), escape=LIKE_ESCAPE))
    if by_categories:
        matches.append(Member.business_category.in_(bindparam("categories", expanding=True)))
    if matches:
        conditions.append(or_(*matches))
    return (
        select(
            Member.business_name,
            Member.name,
            Member.business_category,
            case((Member.show_phone.is_(True), Member.phone)),
            case((Member.show_address.is_(True), Member.address)),
            func.count().over(),
        )
        .where(*conditions)
        .order_by(Member.business_name, Member.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset", 0))
    )


LIKE_ESCAPE = "/"


def _escape_like(text: str) -> str:
    """Typed text matched literally: "100%" or "a_b" are not patterns."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


async def barrio_summary(session: AsyncSession, barrio_id: int) -> tuple[int, list[str]]:
    """Active member count and the names of the active coordinators, for the barrio card."""
    count = await active_member_count(session, barrio_id)
    names = await session.scalars(_COORDINATOR_NAMES, {"barrio_id": barrio_id})
    return count, list(names)


async def barrio_contacts(session: AsyncSession, barrio_id: int) -> list[str]:
    """The contacts the barrio's active coordinators chose to share with its members and
    applicants, oldest coordinator first."""
    contacts = await session.scalars(
        select(Membership.contact)
        .where(
            Membership.barrio_id == barrio_id,
            Membership.role == Role.COORDINATOR,
            Membership.status == MembershipStatus.ACTIVE,
            Membership.contact.is_not(None),
        )
        .order_by(Membership.id)
    )
    return [contact for contact in contacts if contact]


async def membership_for_decision(session: AsyncSession, membership_id: int) -> Membership | None:
    return await session.scalar(
        select(Membership)
        .where(Membership.id == membership_id)
        .options(
            selectinload(Membership.member).selectinload(Member.identities),
            selectinload(Membership.barrio),
        )
    )


async def member_with_identities(session: AsyncSession, member_id: int) -> Member | None:
    return await session.scalar(
        select(Member).where(Member.id == member_id).options(selectinload(Member.identities))
    )


async def broadcast_counts(session: AsyncSession, broadcast: str) -> dict[str, int]:
    """Deliveries of one broadcast ("announcement:12") by status."""
    rows = await session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.broadcast == broadcast)
        .group_by(Delivery.status)
    )
    return {str(status): count for status, count in rows.all()}


async def sole_barrios(session: AsyncSession, barrio_ids: Sequence[int]) -> dict[int, int]:
    """For each member active in exactly one of these barrios, that barrio: what a message
    sent to all of them is, for that member, the business of."""
    rows = await session.execute(
        select(Membership.member_id, func.min(Membership.barrio_id))
        .where(
            Membership.barrio_id.in_(list(barrio_ids)),
            Membership.status == MembershipStatus.ACTIVE,
        )
        .group_by(Membership.member_id)
        .having(func.count() == 1)
    )
    return {member_id: barrio_id for member_id, barrio_id in rows.all()}


async def withdraw_queued(session: AsyncSession, member_id: int, barrio_id: int) -> int:
    """Delete what is still queued for one barrio to one member (on any of their channels),
    and what its coordinators are still to get about them (a join request no longer open);
    returns how many. Deleted, not marked: a broadcast then finishes and its report counts
    only what really went out."""
    result = await session.execute(
        delete(Delivery).where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.barrio_id == barrio_id,
            or_(Delivery.member_id == member_id, Delivery.about_member_id == member_id),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def directory_entry_of(
    session: AsyncSession, member_id: int, barrio_ids: Sequence[int]
) -> DirectoryEntry | None:
    """What a directory search shows of one member to the other members of `barrio_ids`
    (None: they do not appear). The very statement a search runs, narrowed to that member,
    so `/misdatos` can never tell a person something the directory does not do."""
    if not barrio_ids:
        return None
    query = _directory_query(by_text=False, by_categories=False).where(
        Member.id == bindparam("member_id")
    )
    params = {
        "barrio_ids": list(barrio_ids),
        "exclude_member_id": 0,  # no member has id 0: nobody is left out
        "member_id": member_id,
        "limit": 1,
    }
    row = (await session.execute(query, params)).first()
    return DirectoryEntry(*row[:-1]) if row is not None else None


async def notices_with_options(
    session: AsyncSession,
    member_id: int | None,
    since: datetime | None,
    address: tuple[str, str] | None = None,
) -> list[list[dict[str, str]]]:
    """The options of the messages with options delivered to the member after `since` (a
    join request to a coordinator, an invitation), newest first, among the last
    `NOTICES_LOOKED_AT`. Without a member, to the (channel, address) given: an administrator
    who is no member."""
    sent_to = (
        Delivery.member_id == member_id
        if address is None
        else (Delivery.channel == address[0]) & (Delivery.recipient == address[1])
    )
    query = (
        select(Delivery.options)
        .where(sent_to, Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(NOTICES_LOOKED_AT)
    )
    if since is not None:
        query = query.where(Delivery.sent_at > since)
    return [list(options) for options in (await session.scalars(query)).all() if options]
