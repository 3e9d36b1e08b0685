"""`/misdatos`: everything the bot keeps about the person, as a JSON file they can read and
take elsewhere (Ley 21.719: access and portability).

Keys are Spanish words, values are what the bot shows in chat (labels, not codes), and every
instant is ISO 8601 in the barrio's zone. The file opens with a note on each section.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from handlers import registration, texts
from handlers.approvals import reason_words
from handlers.common import active_memberships, category_label, say_menu
from handlers.core import Document, Turn
from handlers.outbox import recipients_of
from models import (
    Barrio,
    Delivery,
    Meeting,
    MeetingInvitation,
    Member,
    Rsvp,
    SecurityAlert,
    queries,
)

FILENAME = "mis-datos-barrio-conecta.json"


async def send(turn: Turn, _args: str = "") -> None:
    member = turn.member
    if member is None:
        if turn.flow == registration.FLOW:
            turn.say(texts.MYDATA_NONE_YET)
            await registration.prompt(turn)
        else:
            say_menu(turn, texts.MYDATA_NONE)
        return
    data = await gather(turn, member)
    content = json.dumps(data, ensure_ascii=False, indent=2).encode() + b"\n"
    turn.say(
        texts.MYDATA_SENT, document=Document(FILENAME, content, "application/json", personal=True)
    )


async def gather(turn: Turn, member: Member) -> dict[str, Any]:
    def when(moment: datetime | None) -> str | None:
        return moment.astimezone(turn.zone).isoformat(timespec="seconds") if moment else None

    session = turn.session
    await session.refresh(member, ["identities"])
    identities = sorted(member.identities, key=lambda identity: identity.id)
    reached = recipients_of(member)
    news_channel = reached[0].channel if reached else None
    answers = await session.execute(
        select(Rsvp, Meeting, Barrio.name)
        .join(Meeting, Meeting.id == Rsvp.meeting_id)
        .join(Barrio, Barrio.id == Meeting.barrio_id)
        .where(Rsvp.member_id == member.id)
        .order_by(Meeting.starts_at, Meeting.id)
    )
    invitations = await session.execute(
        select(MeetingInvitation, Meeting, Barrio.name)
        .join(Meeting, Meeting.id == MeetingInvitation.meeting_id)
        .join(Barrio, Barrio.id == Meeting.barrio_id)
        .where(MeetingInvitation.member_id == member.id)
        .order_by(Meeting.starts_at, Meeting.id)
    )
    alerts = await session.execute(
        select(SecurityAlert, Barrio.name)
        .join(Barrio, Barrio.id == SecurityAlert.barrio_id)
        .where(SecurityAlert.author_id == member.id)
        .order_by(SecurityAlert.created_at, SecurityAlert.id)
    )
    messages = await session.scalars(
        select(Delivery)
        .where(or_(Delivery.member_id == member.id, Delivery.about_member_id == member.id))
        .order_by(Delivery.created_at, Delivery.id)
    )
    active = active_memberships(member)
    listed = await queries.directory_entry_of(session, member.id, [m.barrio_id for m in active])
    quiet = None
    if member.quiet_start is not None and member.quiet_end is not None:
        quiet = {"desde": _clock(member.quiet_start), "hasta": _clock(member.quiet_end)}
    return {
        "generado": when(turn.now),
        "nota": texts.MYDATA_NOTES,
        "perfil": {
            "nombre": member.name,
            "negocio": member.business_name,
            "rubro": category_label(member.business_category),
            "direccion": member.address,
            "telefono": member.phone,
            "en_directorio": member.show_in_directory,
            "mostrar_telefono": member.show_phone,
            "mostrar_direccion": member.show_address,
            "horario_silencio": quiet,
            "resumen_semanal": member.weekly_digest,
        },
        "consentimiento": {"fecha": when(member.consent_at)},
        "canales": [
            {"canal": i.channel, "id": i.external_id, "recibe_avisos": i.channel == news_channel}
            for i in identities
        ],
        "membresias": [
            {
                "barrio": m.barrio.name,
                "rol": texts.ROLE_WORDS[m.role.value],
                "estado": texts.STATUS_WORDS[m.status.value],
                "creada": when(m.created_at),
                "decidida": when(m.decided_at),
                "motivo_rechazo": reason_words(m.rejection_reason, m.rejection_note),
                "contacto_para_vecinos": m.contact,
            }
            for m in sorted(member.memberships, key=lambda m: (m.created_at, m.id))
        ],
        "reuniones": [
            {
                "reunion": meeting.title,
                "barrio": barrio,
                "fecha": when(meeting.starts_at),
                "respuesta": texts.RSVP_LABELS[rsvp.answer.value],
                "respondida": when(rsvp.answered_at),
            }
            for rsvp, meeting, barrio in answers.all()
        ],
        "invitaciones": [
            {
                "reunion": meeting.title,
                "barrio": barrio,
                "fecha": when(meeting.starts_at),
                "invitada": when(invitation.invited_at),
            }
            for invitation, meeting, barrio in invitations.all()
        ],
        "alertas": [
            {
                "barrio": barrio,
                "tipo": texts.ALERT_KINDS[alert.kind.value],
                "descripcion": alert.description,
                "ubicacion": _place(alert),
                "estado": texts.ALERT_STATUS_WORDS[alert.status.value],
                "creada": when(alert.created_at),
            }
            for alert, barrio in alerts.all()
        ],
        "directorio": {
            "apareces": listed is not None,
            "barrios": [m.barrio.name for m in active] if listed is not None else [],
            "lo_que_ven": _shown(listed),
        },
        "mensajes": [
            {
                "para": "ti" if message.member_id == member.id else "la coordinación",
                "texto": message.text,
                "estado": texts.DELIVERY_STATUS_WORDS[message.status.value],
                "creado": when(message.created_at),
                "enviado": when(message.sent_at),
            }
            for message in messages.all()
        ],
        "conversacion": (
            {"en_curso": turn.conversation.flow, "paso": turn.conversation.step}
            if turn.conversation.flow
            else None
        ),
    }


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _place(alert: SecurityAlert) -> dict[str, float] | None:
    if alert.latitude is None or alert.longitude is None:
        return None
    return {"latitud": alert.latitude, "longitud": alert.longitude}


def _shown(listed: queries.DirectoryEntry | None) -> dict[str, str] | None:
    """The fields a directory search shows, and only those (a hidden phone is not a key)."""
    if listed is None:
        return None
    shown = {
        "negocio": listed.business_name,
        "nombre": listed.name,
        "rubro": category_label(listed.business_category),
    }
    if listed.phone:
        shown["telefono"] = listed.phone
    if listed.address:
        shown["direccion"] = listed.address
    return shown
