"""What a member does once in: barrio, directory, profile, leaving; what a coordinator sees."""

from __future__ import annotations

from sqlalchemy import func, select

from handlers.directory import MAX_RESULTS
from models import ChannelIdentity, Conversation, Delivery, Member, Membership, MembershipStatus
from tests.support import make_barrio, make_coordinator, register, text_of


async def test_directory_shows_only_own_barrio_and_what_each_agreed_to_show(runtime, phone):
    centro = await make_barrio(runtime, "Barrio Centro", open_to_all=True)
    otro = await make_barrio(runtime, "Barrio Lejano", "Lolol", open_to_all=True)
    ana = phone(9001, "Ana")
    await register(ana, centro)
    rosa = phone(9002, "Rosa")
    await register(rosa, centro, business="Panadería La Espiga", category="Panadería")
    oculto = phone(9003, "Oscar")
    await register(oculto, centro, listed=False, business="Panadería Oculta", category="Panadería")
    lejos = phone(9004, "Lucía")
    await register(lejos, otro, business="Panadería de Lolol", category="Panadería")

    found = text_of(await ana.say("/directorio panaderia"))  # no accent typed
    assert "Panadería La Espiga" in found
    assert "Oculta" not in found and "Lolol" not in found
    assert "📞" not in found

    await rosa.say("/perfil")
    await rosa.tap("Teléfono")
    assert "Ese teléfono no me sirve" in text_of(await rosa.say("123"))
    await rosa.say("+56 9 8765 4321")
    await rosa.tap("Mostrar teléfono")
    found = await ana.say("/directorio")
    assert "rubro" in text_of(found)
    by_button = text_of(await ana.tap("Panadería"))
    assert "Panadería La Espiga" in by_button and "+56987654321" in by_button

    by_name = text_of(await ana.say("/directorio rosa"))
    assert "Panadería La Espiga" in by_name
    assert "No encontré" in text_of(await ana.say("/directorio lucía"))


async def test_directory_counts_every_match_and_lists_the_first_ones(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(9001, "Ana")
    await register(ana, barrio)
    async with runtime.sessions() as session, session.begin():
        for i in range(MAX_RESULTS + 5):
            session.add(
                Member(
                    name=f"Socia {i:02}",
                    business_name=f"Panadería {i:02}",
                    business_category="panaderia",
                    phone="+56911111111",
                    show_phone=i == 0,
                    consent_at=runtime.clock(),
                    memberships=[Membership(barrio_id=barrio.id, status=MembershipStatus.ACTIVE)],
                )
            )

    found = text_of(await ana.say("/directorio pan"))
    assert f"«pan»: {MAX_RESULTS + 5}" in found
    assert found.count("• Panadería") == MAX_RESULTS
    assert "Panadería 00" in found and f"Panadería {MAX_RESULTS - 1:02}" in found
    assert f"Panadería {MAX_RESULTS:02}" not in found
    assert "… y 5 más" in found
    assert found.count("📞 +56911111111") == 1  # only the one who chose to show it
    # What people type is matched literally, never as a SQL pattern.
    for typed in ("%", "_", "/", "pan%"):
        assert "No encontré" in text_of(await ana.say(f"/directorio {typed}"))


async def test_pending_member_cannot_browse_directory(runtime, phone):
    barrio = await make_barrio(runtime)
    # Someone who can answer the request: a barrio nobody could answer takes none.
    carmen = phone(9004, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    ana = phone(9005, "Ana")
    await register(ana, barrio)
    assert "aprobado" in text_of(await ana.say("/directorio pan"))


async def test_profile_edit_and_barrio_card(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Estación", open_to_all=True)
    carmen = phone(9006, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    ana = phone(9007, "Ana")
    await register(ana, barrio)
    await ana.say("/perfil")
    await ana.tap("Nombre")
    saved = text_of(await ana.say("Ana María Pérez"))
    assert "Guardado" in saved and "Ana María Pérez" in saved
    await ana.tap("Rubro")
    assert "Rubro: 🔧 Taller" in text_of(await ana.tap("Taller"))
    card = text_of(await ana.say("/barrio"))
    assert "Barrio Estación" in card and "Carmen" in card and "Socios activos: 2" in card


async def test_coordinator_lists_members_and_approves_from_the_list(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Norte")
    carmen = phone(9008, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    beto = phone(9009, "Beto")
    await register(beto, barrio, business="Bazar Beto")
    await carmen.wait_for("Nueva solicitud")
    listing = await carmen.say("/miembros")
    assert "socios activos: 1" in text_of(
        listing
    ) and "Solicitudes por aprobar en Barrio Norte: 1" in text_of(listing)
    assert "Bazar Beto" in listing[-1]["text"]
    await carmen.tap("Aprobar")
    await beto.wait_for("Ya eres parte")
    assert "ya estaba resuelta" in text_of(
        await carmen.tap_data(
            listing[-1]["message_id"],
            listing[-1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
            forge=True,
        )
    )
    socio_answer = text_of(await beto.say("/miembros"))
    assert "solo para la coordinación" in socio_answer


async def test_leave_a_barrio(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Sur", open_to_all=True)
    ana = phone(9010, "Ana")
    await register(ana, barrio)
    await ana.say("/baja")
    await ana.tap("Salir de Barrio Sur")
    assert "Saliste de Barrio Sur" in text_of(await ana.tap("Sí, salir"))
    async with runtime.sessions() as session:
        membership = await session.scalar(select(Membership))
        assert membership is not None and membership.status == MembershipStatus.LEFT
    assert "Aún no eres parte" in text_of(await ana.say("/barrio"))


async def test_erase_all_data_really_deletes(runtime, phone):
    barrio = await make_barrio(runtime)
    carmen = phone(9011, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    ana = phone(9012, "Ana")
    await register(ana, barrio)
    await ana.say("/baja")
    await ana.tap("Borrar todos mis datos")
    assert "No se puede deshacer" in ana.last()["text"]
    erased = text_of(await ana.tap("Sí, borrar todo"))
    assert "Borré tus datos" in erased and "inscripciones en barrios (1)" in erased
    async with runtime.sessions() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Member).where(Member.name == "Ana")
            )
            == 0
        )
        assert (
            await session.scalar(
                select(func.count())
                .select_from(ChannelIdentity)
                .where(ChannelIdentity.external_id == "9012")
            )
            == 0
        )
        assert (
            await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.external_id == "9012")
            )
            == 0
        )
        assert (
            await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.recipient == "9012")
            )
            == 0
        )
        assert await session.scalar(select(func.count()).select_from(Membership)) == 1  # Carmen's
    assert "Registrarme" in str((await ana.say("/perfil"))[-1]["reply_markup"])


async def test_baja_can_be_called_off(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(9013, "Ana")
    await register(ana, barrio)
    await ana.say("/baja")
    await ana.tap("Borrar todos mis datos")
    assert "no cambié nada" in text_of(await ana.tap("No"))
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 1


async def test_address_shown_in_directory_and_phone_removed(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Oeste", open_to_all=True)
    ana = phone(9014, "Ana")
    await register(ana, barrio)
    rosa = phone(9015, "Rosa")
    await register(rosa, barrio, business="Panadería Rosa", category="Panadería")
    await rosa.say("/perfil")
    await rosa.tap("Dirección")
    assert "muy corto" in text_of(await rosa.say("x"))
    await rosa.say("Estado 123, local 4")
    await rosa.tap("Mostrar dirección")
    assert "📍 Estado 123, local 4" in text_of(await ana.say("/directorio rosa"))
    await rosa.tap("Teléfono")
    await rosa.say("9 8765 4321")
    await rosa.tap("Teléfono")
    assert "Teléfono: —" in text_of(await rosa.tap("Quitar"))
    async with runtime.sessions() as session:
        member = await session.scalar(select(Member).where(Member.name == "Rosa"))
        assert (
            member is not None and member.phone is None and member.address == "Estado 123, local 4"
        )


async def test_registered_people_are_not_registered_twice(runtime, phone):
    barrio = await make_barrio(runtime)
    carmen = phone(9016, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    ana = phone(9017, "Ana")
    await register(ana, barrio)
    assert "Ya tienes tu registro" in text_of(await ana.say("/start"))
    assert "Ya tienes tu registro" in text_of(await ana.say("/registro"))
    assert "ya está enviada" in text_of(await ana.say(f"/start {barrio.invite_code}"))
    await carmen.wait_for("Nueva solicitud")
    await carmen.tap("Rechazar")
    await carmen.tap("Sin motivo")
    await ana.wait_for("no aprobó")
    async with runtime.sessions() as session:
        requests_before = await session.scalar(select(func.count()).select_from(Delivery))
    # Following the poster link again does not nag the coordinators.
    assert "no aprobó tu solicitud" in text_of(await ana.say(f"/start {barrio.invite_code}"))
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Delivery)) == requests_before
