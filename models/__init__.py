"""Schema and queries of Barrio Conecta: SQLAlchemy 2 typed models on an async engine."""

from models.entities import (
    AlertKind,
    AlertStatus,
    Announcement,
    Barrio,
    Base,
    ChannelIdentity,
    Conversation,
    Delivery,
    DeliveryStatus,
    InboundUpdate,
    Member,
    Membership,
    MembershipStatus,
    Priority,
    Role,
    SecurityAlert,
)

__all__ = [
    "AlertKind",
    "AlertStatus",
    "Announcement",
    "Barrio",
    "Base",
    "ChannelIdentity",
    "Conversation",
    "Delivery",
    "DeliveryStatus",
    "InboundUpdate",
    "Member",
    "Membership",
    "MembershipStatus",
    "Priority",
    "Role",
    "SecurityAlert",
]
