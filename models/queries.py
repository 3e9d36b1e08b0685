"""Queries the dialogue and the admin commands share. They take a session and never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models.entities import (
    Barrio,
    ChannelIdentity,
    Conversation,
    Member,
    Membership,
    MembershipStatus,
    Role,
)

_MEMBER_LOADS = (
    selectinload(Member.identities),
    selectinload(Member.memberships).selectinload(Membership.barrio),
)


async def member_by_identity(
    session: AsyncSession, channel: str, external_id: str
) -> Member | None:
    return await session.scalar(
        select(Member)
        .join(ChannelIdentity)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
        .options(*_MEMBER_LOADS)
    )


async def member_by_id(session: AsyncSession, member_id: int) -> Member | None:
    return await session.scalar(
        select(Member).where(Member.id == member_id).options(*_MEMBER_LOADS)
    )


async def conversation_for(session: AsyncSession, channel: str, external_id: str) -> Conversation:
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.channel == channel, Conversation.external_id == external_id
        )
    )
    if conversation is None:
        conversation = Conversation(channel=channel, external_id=external_id, data={})
    return conversation


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


async def active_member_count(session: AsyncSession, barrio_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.barrio_id == barrio_id, Membership.status == MembershipStatus.ACTIVE)
    )
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


async def directory_members(
    session: AsyncSession, barrio_ids: Sequence[int], exclude_member_id: int
) -> Sequence[Member]:
    """Members who chose to be listed, active in any of these barrios, each once."""
    listed = (
        select(Membership.member_id)
        .where(
            Membership.barrio_id.in_(barrio_ids),
            Membership.status == MembershipStatus.ACTIVE,
        )
        .scalar_subquery()
    )
    return (
        await session.scalars(
            select(Member)
            .where(
                Member.id.in_(listed),
                Member.show_in_directory.is_(True),
                Member.id != exclude_member_id,
            )
            .order_by(Member.business_name, Member.id)
        )
    ).all()


async def membership_for_decision(session: AsyncSession, membership_id: int) -> Membership | None:
    return await session.scalar(
        select(Membership)
        .where(Membership.id == membership_id)
        .options(
            selectinload(Membership.member).selectinload(Member.identities),
            selectinload(Membership.barrio),
        )
    )
