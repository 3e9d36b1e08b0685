"""What whoever runs a deployment can do from the command line; channel-neutral, no printing."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from handlers import approvals, reminders
from handlers.common import category_label
from handlers.core import fold
from handlers.reminder_settings import parse_hours
from models import (
    Barrio,
    FundingCall,
    Meeting,
    MeetingStatus,
    Member,
    Membership,
    MembershipStatus,
    Role,
    Rsvp,
    queries,
)
from models.entities import SESSION_CLOCK

# No 0/O, 1/I/L: codes are read off posters and typed by hand.
INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
INVITE_LENGTH = 8
SANTIAGO = ZoneInfo("America/Santiago")


class AdminError(Exception):
    """A request that cannot be done as asked; the message says why, in one line."""


def slugify(*parts: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", fold(" ".join(parts))).strip("-")
    return words[:80] or "barrio"


async def create_barrio(
    session: AsyncSession, *, name: str, comuna: str, region: str, open_to_all: bool
) -> Barrio:
    name, comuna, region = name.strip(), comuna.strip(), region.strip()
    if not (name and comuna and region):
        raise AdminError("el nombre, la comuna y la región no pueden quedar vacíos")
    if max(len(name), len(comuna), len(region)) > 80:
        raise AdminError("el nombre, la comuna y la región llevan hasta 80 caracteres")
    slug = base = slugify(name, comuna)
    suffix = 2
    while await queries.barrio_by_slug(session, slug) is not None:
        slug, suffix = f"{base}-{suffix}", suffix + 1
    barrio = Barrio(
        slug=slug,
        name=name,
        comuna=comuna,
        region=region,
        invite_code=await _new_invite_code(session),
        requires_approval=not open_to_all,
    )
    session.add(barrio)
    await session.flush()
    return barrio


def _same_words(text: str) -> str:
    return " ".join(fold(text).split())


async def twin_barrio(session: AsyncSession, name: str, comuna: str) -> Barrio | None:
    """A barrio of that name in that comuna, however it was accented, capitalised or spaced."""
    wanted = (_same_words(name), _same_words(comuna))
    return next(
        (
            barrio
            for barrio in await queries.all_barrios(session)
            if (_same_words(barrio.name), _same_words(barrio.comuna)) == wanted
        ),
        None,
    )


async def refuse_twin(session: AsyncSession, name: str, comuna: str) -> None:
    """A second "Barrio Estación" in Rancagua is almost always the first one typed again."""
    twin = await twin_barrio(session, name, comuna)
    if twin is not None:
        raise AdminError(
            f"ya existe {twin.name} en {twin.comuna}: {twin.slug} "
            "(para crear otro con el mismo nombre, agrega --force)"
        )


async def _new_invite_code(session: AsyncSession) -> str:
    while True:
        code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))
        if await queries.barrio_by_invite(session, code) is None:
            return code


async def require_barrio(session: AsyncSession, slug: str) -> Barrio:
    barrio = await queries.barrio_by_slug(session, slug)
    if barrio is None:
        raise AdminError(f"no hay un barrio con el slug {slug} (míralos con `barrio barrios list`)")
    return barrio


class Promotion(NamedTuple):
    member: Member
    # Join requests that were waiting and now go to this, the barrio's first coordinator.
    forwarded: int


async def make_coordinator(
    session: AsyncSession,
    barrio: Barrio,
    channel: str,
    external_id: str,
    *,
    default_zone: ZoneInfo = SANTIAGO,
) -> Promotion:
    """Makes that registered person an active coordinator of the barrio. The barrio's first
    coordinator also gets the requests still waiting, which went to nobody, or to the
    administrators, until now (`default_zone`: BARRIO_TIMEZONE, for their quiet hours)."""
    member = await queries.member_by_identity(session, channel, external_id)
    if member is None:
        where = "el id de Telegram" if channel == "telegram" else "el número de WhatsApp"
        raise AdminError(f"nadie se ha registrado en el bot con {where} {external_id}")
    first = not await queries.coordinators_of(session, barrio.id)
    membership = next((m for m in member.memberships if m.barrio_id == barrio.id), None)
    if membership is None:
        membership = Membership(member=member, barrio=barrio)
        session.add(membership)
    membership.role = Role.COORDINATOR
    membership.status = MembershipStatus.ACTIVE
    # A rejection's reason is about a rejection: an active membership has none.
    membership.rejection_reason = membership.rejection_note = None
    await session.flush()
    if not first:
        return Promotion(member, 0)
    coordinator = await queries.member_with_identities(session, member.id)
    assert coordinator is not None
    forwarded = await approvals.forward_pending(
        session,
        barrio,
        coordinator,
        # The clock the session stamps rows with: the command's, or the runtime's in a test.
        now=session.info[SESSION_CLOCK](),
        zone=reminders.barrio_zone(barrio, default_zone),
    )
    return Promotion(member, forwarded)


async def barrios_nobody_answers(session: AsyncSession) -> list[int]:
    """Ids of the barrios that need approval and have no active coordinator: without an
    administrator, nobody could answer a request to join them."""
    coordinated = await queries.coordinator_counts(session)
    return [
        b.id
        for b in await queries.all_barrios(session)
        if b.requires_approval and b.id not in coordinated
    ]


async def set_timezone(
    session: AsyncSession, barrio: Barrio, name: str, now: datetime, default: ZoneInfo
) -> None:
    """The barrio's zone (America/Punta_Arenas for Magallanes); its reminders follow it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AdminError(
            f"no conozco la zona horaria {name} (por ejemplo America/Punta_Arenas)"
        ) from None
    ahead = await session.scalar(
        select(func.count())
        .select_from(Meeting)
        .where(
            Meeting.barrio_id == barrio.id,
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.starts_at > now,
        )
    )
    if ahead:
        # Their hours were typed and announced in the old zone: a new zone would move them.
        raise AdminError(
            f"{barrio.slug} tiene reuniones por delante ({ahead}), anunciadas con su zona "
            "actual; cambia la zona antes de convocar reuniones, o cancélalas primero"
        )
    barrio.timezone = name
    await session.flush()
    calls = (
        await session.scalars(
            select(FundingCall).where(
                FundingCall.withdrawn_at.is_(None), FundingCall.closes_on >= now.date()
            )
        )
    ).all()
    for call in calls:
        await reminders.plan_call(session, call, now, default)


async def set_reminder_hours(
    session: AsyncSession, barrio: Barrio, hours: str, now: datetime
) -> tuple[int, ...]:
    """ "48,3" or "ninguno": how long before each meeting its reminders go out."""
    if fold(hours) in ("none", "ninguno", "ninguna", "no", "0"):
        minutes: tuple[int, ...] | None = ()
    else:
        minutes = parse_hours(hours)
    if minutes is None:
        raise AdminError(
            f"--reminders lleva hasta {reminders.MAX_REMINDERS} horas enteras, de 1 a "
            f"{reminders.MAX_REMINDER_MINUTES // 60}, por ejemplo 48,3 (o ninguno)"
        )
    barrio.reminder_minutes = list(minutes)
    await session.flush()
    await reminders.replan_barrio(session, barrio, now)
    return minutes


MEMBER_COLUMNS = (
    "nombre",
    "negocio",
    "rubro",
    "direccion",
    "telefono",
    "rol",
    "estado",
    "fecha_ingreso",
    "fecha_consentimiento",
    "en_directorio",
)
# The membership's state as a coordinator would say it of a socio.
MEMBERSHIP_WORDS = {
    MembershipStatus.ACTIVE: "activo",
    MembershipStatus.PENDING: "pendiente",
    MembershipStatus.REJECTED: "rechazado",
    MembershipStatus.LEFT: "retirado",
    MembershipStatus.REMOVED: "quitado",
}
# Dates a spreadsheet reads as dates, in the barrio's own clock.
LOCAL_TIME = "%Y-%m-%d %H:%M"


# Who is in the barrio, or asking to be; who left, was turned away or taken out is history.
CURRENT = (MembershipStatus.ACTIVE, MembershipStatus.PENDING)


async def member_rows(
    session: AsyncSession, barrio: Barrio, zone: ZoneInfo, *, everyone: bool = False
) -> Sequence[tuple[str, ...]]:
    """Active and pending members; `everyone` adds those who left, were rejected or removed.

    Times are in the barrio's zone (`zone` when it has none of its own).
    """
    local = reminders.barrio_zone(barrio, zone)
    query = select(Membership).join(Member).where(Membership.barrio_id == barrio.id)
    if not everyone:
        query = query.where(Membership.status.in_(CURRENT))
    memberships = (
        await session.scalars(
            query.order_by(Member.name, Member.id).options(selectinload(Membership.member))
        )
    ).all()
    rows = []
    for membership in memberships:
        member = membership.member
        texts = (
            spreadsheet_safe(cell)
            for cell in (
                member.name,
                member.business_name,
                category_label(member.business_category).split(" ", 1)[-1],
                member.address or "",
            )
        )
        rows.append(
            (
                *texts,
                sheet_phone(member.phone or ""),
                "coordinador" if membership.role == Role.COORDINATOR else "socio",
                MEMBERSHIP_WORDS[membership.status],
                membership.created_at.astimezone(local).strftime(LOCAL_TIME),
                member.consent_at.astimezone(local).strftime(LOCAL_TIME),
                "sí" if member.show_in_directory else "no",
            )
        )
    return rows


def spreadsheet_safe(cell: str) -> str:
    """Names are typed by members; a leading = + - @ would run as a formula in Excel."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def chilean_digits(number: str) -> str | None:
    """ "+56912345678" → "9 1234 5678", "+56722123456" → "72 212 3456", as Chile groups them
    (mobiles and Santiago have a 1-digit prefix); None for a number from elsewhere."""
    digits = number.removeprefix("+56")
    if not (number.startswith("+56") and len(digits) == 9 and digits.isdigit()):
        return None
    if digits[0] in "29":
        return f"{digits[0]} {digits[1:5]} {digits[5:]}"
    return f"{digits[:2]} {digits[2:5]} {digits[5:]}"


def sheet_phone(number: str) -> str:
    """How a phone reads and dials from a spreadsheet: "9 1234 5678".

    Every stored number is Chilean (+56, see handlers.profile), and in Chile the nine digits
    dial from any phone. Without the + it is no formula in Excel, LibreOffice or Google Sheets,
    and with its spaces no number to strip or round: text, shown as written, with no apostrophe
    (docs/decisions/0005-phones-in-the-members-csv.md).
    """
    return chilean_digits(number) or spreadsheet_safe(number)


ATTENDANCE_COLUMNS = ("reunion", "fecha_local", "estado", "socio", "negocio", "respuesta")


async def attendance_rows(
    session: AsyncSession, barrio: Barrio, zone: ZoneInfo
) -> Sequence[tuple[str, ...]]:
    """One row per answer to each meeting of the barrio, as Sercotec asks for participation.

    Dates in the barrio's zone (`zone` when it has none of its own), as its meetings were called.
    """
    local = reminders.barrio_zone(barrio, zone)
    rows = await session.execute(
        select(Meeting, Member.name, Member.business_name, Rsvp.answer)
        .join(Rsvp, Rsvp.meeting_id == Meeting.id)
        .join(Member, Member.id == Rsvp.member_id)
        .where(Meeting.barrio_id == barrio.id)
        .order_by(Meeting.starts_at, Member.name)
    )
    labels = {"yes": "asistire", "no": "no_podre", "maybe": "tal_vez"}
    return [
        tuple(
            spreadsheet_safe(cell)
            for cell in (
                meeting.title,
                meeting.starts_at.astimezone(local).strftime(LOCAL_TIME),
                "cancelada" if meeting.status == MeetingStatus.CANCELLED else "programada",
                name,
                business,
                labels[answer.value],
            )
        )
        for meeting, name, business, answer in rows
    ]
