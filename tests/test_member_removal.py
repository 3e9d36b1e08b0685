"""`/miembros`: a coordinator removes a member of their barrio with taps (or typed numbers),
the member and the other coordinators are told, and what was queued for them goes; stale and
forged buttons are answered, never obeyed."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, update

from handlers import admin, removal
from models import Delivery, DeliveryStatus, Member, Membership, MembershipStatus, Role
from tests.support import (
    buttons,
    make_barrio,
    make_coordinator,
    membership_of,
    register,
    snapshot,
    text_of,
)
from tests.test_mydata import _downloaded


async def _barrio(runtime, phone, name="Barrio Estación", first=9600):
    """Carmen and Pablo coordinate; Ana and Beto are members."""
    barrio = await make_barrio(runtime, name, open_to_all=True)
    carmen, pablo = phone(first, "Carmen"), phone(first + 1, "Pablo")
    for coordinator in (carmen, pablo):
        await register(coordinator, barrio, business=f"Librería {coordinator.name}")
        await make_coordinator(runtime, coordinator, barrio)
    ana, beto = phone(first + 2, "Ana"), phone(first + 3, "Beto")
    await register(ana, barrio, business="Almacén Ana")
    await register(beto, barrio, business="Bazar Beto")
    return barrio, carmen, pablo, ana, beto


def _without_conversations(rows: dict) -> dict:
    """What must not change: everything but what was offered last (so its numbers work)."""
    return {table: content for table, content in rows.items() if table != "conversations"}


async def test_a_coordinator_removes_a_member_who_and_whose_coordinators_are_told(
    runtime, phone, clock
):
    barrio, carmen, pablo, ana, beto = await _barrio(runtime, phone)
    beto_row = await membership_of(runtime, "Beto", barrio.id)
    async with runtime.sessions() as session, session.begin():
        # An announcement still waiting for Beto's morning: it must not reach him now.
        session.add(
            Delivery(
                channel="telegram",
                recipient=str(beto.user_id),
                member_id=beto_row.member_id,
                text="Anuncio que espera la mañana",
                options=[],
                barrio_id=barrio.id,
                priority=50,
                status=DeliveryStatus.PENDING,
                attempts=0,
                not_before=clock() + timedelta(hours=10),
            )
        )

    listing = await carmen.say("/miembros")
    assert any("🚪 Quitar a un socio" in [b["text"] for b in buttons(m)] for m in listing)
    picking = (await carmen.tap("Quitar a un socio"))[-1]
    assert picking["text"] == "¿A quién quieres quitar de Barrio Estación?"
    # Coordinators, this one too, are not on the list.
    assert [b["text"] for b in buttons(picking)] == [
        "Ana · Almacén Ana",
        "Beto · Bazar Beto",
        "Nada, volver",
    ]
    confirm = (await carmen.tap("Beto"))[-1]
    assert confirm["text"].startswith("¿Quitar a Beto de Barrio Estación?")
    assert [b["text"] for b in buttons(confirm)] == ["Sí, quitar", "No"]
    before_tap = clock()
    done = text_of(await carmen.tap("Sí, quitar"))
    assert "Listo: Beto ya no es parte de Barrio Estación" in done

    told = await beto.wait_for("te quitó del barrio")
    assert "La coordinación de Barrio Estación" in told["text"]
    # Not a dead end: whom to talk to, and the way into another barrio.
    assert "aún no ha dejado un contacto" in told["text"]
    assert [b["text"] for b in buttons(told)] == ["🏘️ Pedir ingreso a otro barrio"]
    # Who removed him is not named: that would outlive her erasure.
    notice = await pablo.wait_for("La coordinación quitó a Beto de Barrio Estación.")
    assert "Carmen" not in notice["text"]
    removed = await membership_of(runtime, "Beto", barrio.id)
    assert removed.status == MembershipStatus.REMOVED and removed.role == Role.MEMBER
    assert removed.decided_at is not None and before_tap <= removed.decided_at <= clock()
    async with runtime.sessions() as session:
        waiting = (await session.scalars(select(Delivery.text))).all()
    assert "Anuncio que espera la mañana" not in waiting
    assert not any("quitó a Beto" in t for t in carmen.texts())  # she saw it happen
    assert "Almacén Ana" not in text_of(await beto.say("/directorio almacen"))
    assert (await membership_of(runtime, "Ana", barrio.id)).status == MembershipStatus.ACTIVE

    # The same confirmation tapped again, late: said so, nothing changes.
    before = await snapshot(runtime)
    yes = buttons(confirm)[0]["callback_data"]
    again = text_of(await carmen.tap_data(confirm["message_id"], yes, forge=True))
    assert "Beto no está entre los socios de Barrio Estación" in again
    assert _without_conversations(await snapshot(runtime)) == _without_conversations(before)


async def test_saying_no_or_going_back_removes_nobody(runtime, phone):
    barrio, carmen, *_ = await _barrio(runtime, phone)
    await carmen.say("/miembros")
    before = await snapshot(runtime)
    await carmen.tap("Quitar a un socio")
    await carmen.tap("Ana")
    assert "no quité a nadie" in text_of(await carmen.tap("No"))
    await carmen.say("/miembros")
    await carmen.tap("Quitar a un socio")
    assert "no quité a nadie" in text_of(await carmen.tap("Nada, volver"))
    assert _without_conversations(await snapshot(runtime)) == _without_conversations(before)


async def test_many_members_come_in_pages_and_a_typed_number_picks_one(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Grande", open_to_all=True)
    carmen = phone(9650, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    async with runtime.sessions() as session, session.begin():
        for i in range(19):
            session.add(
                Member(
                    name=f"Socio {i:02}",
                    business_name=f"Negocio {i:02}",
                    business_category="otro",
                    consent_at=runtime.clock(),
                    memberships=[Membership(barrio_id=barrio.id, status=MembershipStatus.ACTIVE)],
                )
            )
    await carmen.say("/miembros")
    first = (await carmen.tap("Quitar a un socio"))[-1]
    assert first["text"].endswith("(página 1 de 3)")
    labels = [b["text"] for b in buttons(first)]
    assert labels[:8] == [f"Socio {i:02} · Negocio {i:02}" for i in range(8)]
    assert labels[8:] == ["Más ▶️", "Nada, volver"]
    second = (await carmen.tap("Más"))[-1]
    assert second["text"].endswith("(página 2 de 3)")
    assert [b["text"] for b in buttons(second)][8:] == ["◀️ Anteriores", "Más ▶️", "Nada, volver"]
    third = (await carmen.tap("Más"))[-1]
    assert [b["text"] for b in buttons(third)] == [
        "Socio 16 · Negocio 16",
        "Socio 17 · Negocio 17",
        "Socio 18 · Negocio 18",
        "◀️ Anteriores",
        "Nada, volver",
    ]
    back = (await carmen.tap("Anteriores"))[-1]
    assert back["text"].endswith("(página 2 de 3)")
    # Typed, as on WhatsApp: the first of page 2.
    assert "¿Quitar a Socio 08 de Barrio Grande?" in text_of(await carmen.say("1"))
    assert "Socio 08 ya no es parte" in text_of(await carmen.say("1"))  # Sí, quitar
    # A page past the end (the list shrank) shows the last one.
    late = (await carmen.tap_data(back["message_id"], f"rmv:list:{barrio.id}:99", forge=True))[-1]
    assert late["text"].endswith("(página 3 de 3)")


async def test_stale_and_forged_removal_buttons_change_nothing(runtime, phone):
    barrio, carmen, pablo, ana, beto = await _barrio(runtime, phone)
    lejano = await make_barrio(runtime, "Barrio Lejano", "Lolol", open_to_all=True)
    lucia = phone(9690, "Lucía")
    await register(lucia, lejano, business="Bazar Lucía")
    ids = {name: (await membership_of(runtime, name, barrio.id)).id for name in ("Carmen", "Pablo")}
    ids["Beto"] = (await membership_of(runtime, "Beto", barrio.id)).id
    ids["Lucía"] = (await membership_of(runtime, "Lucía", lejano.id)).id
    message = (await carmen.say("/miembros"))[-1]["message_id"]
    before = await snapshot(runtime)
    expected = {
        f"rmv:pick:{ids['Pablo']}": "Pablo es parte de la coordinación",
        f"rmv:yes:{ids['Pablo']}": "Pablo es parte de la coordinación",
        f"rmv:pick:{ids['Carmen']}": "para salir del barrio, usa /baja",
        f"rmv:yes:{ids['Lucía']}": "solo para la coordinación",
        f"rmv:list:{lejano.id}:0": "solo para la coordinación",
        "rmv:pick:2147483000": "Esa persona ya no está en el barrio",
        "rmv:pick:999999999999": "no es válido",
        "rmv:pick:uno": "no es válido",
        f"rmv:list:{barrio.id}:-1": "no es válido",
        "rmv:list:x:0": "no es válido",
        "rmv:borrar:1": "no es válido",
    }
    for data, said in expected.items():
        answer = text_of(await carmen.tap_data(message, data, forge=True))
        assert said in answer, (data, answer)
    # Someone who coordinates nothing cannot use them at all.
    ana_message = (await ana.say("/ayuda"))[-1]["message_id"]
    for data in (f"rmv:yes:{ids['Beto']}", f"rmv:list:{barrio.id}:0"):
        answer = text_of(await ana.tap_data(ana_message, data, forge=True))
        assert "solo para la coordinación" in answer, data
    assert _without_conversations(await snapshot(runtime)) == _without_conversations(before)


async def test_a_barrio_of_coordinators_only_offers_no_removal(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Chico", open_to_all=True)
    carmen = phone(9670, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    listing = await carmen.say("/miembros")
    assert not any("Quitar" in b["text"] for m in listing for b in buttons(m))
    answer = text_of(
        await carmen.tap_data(listing[-1]["message_id"], f"rmv:list:{barrio.id}:0", forge=True)
    )
    assert "En Barrio Chico no hay socios que puedas quitar" in answer


async def _remove(carmen, name: str) -> str:
    await carmen.say("/miembros")
    await carmen.tap("Quitar a un socio")
    await carmen.tap(name)
    return text_of(await carmen.tap("Sí, quitar"))


CONTACT = "Carmen, 9 1234 5678"


async def test_someone_removed_is_told_so_and_neither_the_link_nor_the_list_asks_again(
    runtime, phone, clock, emulator
):
    barrio, carmen, pablo, ana, beto = await _barrio(runtime, phone)
    await make_barrio(runtime, "Barrio Lejano", "Lolol", open_to_all=True)
    await carmen.say("/barrio")
    await carmen.tap("Contacto para vecinos")
    await carmen.say(CONTACT)
    assert "Beto ya no es parte" in await _remove(carmen, "Beto")
    await beto.wait_for("te quitó del barrio")

    # /barrio: removed, not "Saliste", with whom to talk to and the way into another barrio.
    standing = await beto.say("/barrio")
    said = text_of(standing)
    assert "🚫 La coordinación de Barrio Estación te quitó del barrio." in said
    assert f"📞 {CONTACT}" in said and "Saliste" not in said
    assert buttons(standing[-1])[0]["text"] == "🏘️ Pedir ingreso a otro barrio"

    # An open barrio, a day later: its link does not take him back, nor ask anyone.
    clock.advance(timedelta(hours=25))
    before = await snapshot(runtime)
    link = text_of(await beto.say(f"/start {barrio.invite_code}"))
    assert "te quitó del barrio. Por eso no puedo pedir tu ingreso de nuevo." in link
    assert f"📞 {CONTACT}" in link and "hace poco" not in link and "Ya eres parte" not in link
    assert _without_conversations(await snapshot(runtime)) == _without_conversations(before)
    # Nor does the barrio list offer it.
    picker = await beto.tap("Pedir ingreso a otro barrio")
    assert [b["text"] for b in buttons(picker[-1])] == ["Lolol · Barrio Lejano"]

    # His data and the members export say what happened, in their own words.
    data = json.loads(await _downloaded(emulator, (await beto.say("/misdatos"))[-1]))
    assert [m["estado"] for m in data["membresias"]] == ["quitada por la coordinación"]
    async with runtime.sessions() as session:
        rows = await admin.member_rows(session, barrio, admin.SANTIAGO, everyone=True)
    assert {row[0]: row[6] for row in rows}["Beto"] == "quitado"

    # Whoever runs the deployment can still make him a coordinator of that barrio.
    await make_coordinator(runtime, beto, barrio)
    promoted = await membership_of(runtime, "Beto", barrio.id)
    assert (promoted.status, promoted.role) == (MembershipStatus.ACTIVE, Role.COORDINATOR)
    assert "🧭 Coordinas este barrio" in text_of(await beto.say("/barrio"))


async def test_a_member_made_coordinator_while_being_removed_is_said_to_be_one(
    runtime, phone, monkeypatch
):
    barrio, carmen, pablo, ana, beto = await _barrio(runtime, phone)
    beto_id = (await membership_of(runtime, "Beto", barrio.id)).id
    checked = removal._removable

    async def promoted_meanwhile(turn, arg):
        # `barrio coordinators add` landing between the checks and the removal's UPDATE.
        membership = await checked(turn, arg)
        if membership is not None:
            await turn.session.execute(
                update(Membership).where(Membership.id == beto_id).values(role=Role.COORDINATOR)
            )
        return membership

    await carmen.say("/miembros")
    await carmen.tap("Quitar a un socio")
    await carmen.tap("Beto")
    monkeypatch.setattr(removal, "_removable", promoted_meanwhile)
    answer = text_of(await carmen.tap("Sí, quitar"))
    assert "Beto es parte de la coordinación: no se puede quitar desde aquí" in answer
    assert "no está entre los socios" not in answer
    kept = await membership_of(runtime, "Beto", barrio.id)
    assert (kept.status, kept.role) == (MembershipStatus.ACTIVE, Role.COORDINATOR)
