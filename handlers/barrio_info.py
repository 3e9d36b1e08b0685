"""`/barrio`: the member's barrios, who coordinates them and how many belong."""

from __future__ import annotations

from handlers import texts
from handlers.common import main_menu, require_member
from handlers.core import Turn
from models import MembershipStatus, Role, queries


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
        turn.say(texts.NO_BARRIO, main_menu(member))
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
        turn.say(
            texts.BARRIO_CARD.format(
                name=barrio.name,
                comuna=barrio.comuna,
                region=barrio.region,
                count=count,
                coordinators=", ".join(coordinators) or texts.NO_COORDINATORS,
                status=status,
            )
        )
