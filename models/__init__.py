"""Schema and queries of Barrio Conecta: SQLAlchemy 2 typed models on an async engine."""

from models.entities import (
    Barrio,
    Base,
    ChannelIdentity,
    Conversation,
    Delivery,
    DeliveryStatus,
    Member,
    Membership,
    MembershipStatus,
    Role,
)

__all__ = [
    "Barrio",
    "Base",
    "ChannelIdentity",
    "Conversation",
    "Delivery",
    "DeliveryStatus",
    "Member",
    "Membership",
    "MembershipStatus",
    "Role",
]
