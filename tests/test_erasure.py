"""Erasure is complete (Ley 21.719): after "Sí, borrar todo", no table and no log line holds
the person's name, business, address, phone, Telegram id or anything they typed.

The member uses every feature first, so that each place their data can land is filled; then
every column of every table is dumped and searched. What the README says is kept (an alert's
kind and time, a meeting's own words) is allowed; nothing of the person is.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime

from sqlalchemy import select

from bot.logs import quiet_libraries
from models import Base, SecurityAlert
from tests.support import TOKEN, make_barrio, make_coordinator, register, text_of
from tests.test_funding import _publish
from tests.test_meetings import _call_meeting

USER_ID = 7770123
NAME = "Zoraida Quispeñuñoa"
BUSINESS = "Bazar Xilófono Azul"
ADDRESS = "Pasaje Wiracocha 4321"
PHONE_TYPED = "9 8765 4329"
ALERT_TEXT = "Zumbido raro tras la cortina metálica"
LATITUDE, LONGITUDE = -34.177771, -70.744449
CONTACT = "Pregunte por Zoraida al 2 2345 6789"  # what she shares as a coordinator
REASON = "Ya vende chalas Quispe en la feria"  # why another barrio turned her down
TRACES = [
    NAME,
    "Quispeñuñoa",
    "Quispenunoa",  # folded, as the directory's search text stores it
    BUSINESS,
    "xilofono",
    ADDRESS,
    "Wiracocha",
    "87654329",
    str(USER_ID),
    ALERT_TEXT,
    "cortina metálica",
    str(LATITUDE)[:8],
    str(LONGITUDE)[:8],
    CONTACT,
    "2 2345 6789",
    REASON,
]


async def test_nothing_of_an_erased_member_is_left(runtime, phone, emulator, caplog):
    quiet_libraries()  # as `barrio run` configures logging
    caplog.set_level(logging.INFO)

    barrio = await make_barrio(runtime, "Barrio Estación")  # joining needs approval
    carmen = phone(7770001, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    beto = phone(7770002, "Beto")
    await register(beto, barrio, business="Negocio Beto")
    await carmen.wait_for("Nueva solicitud")
    await carmen.tap("Aprobar")

    zoraida = phone(USER_ID, "Zoraida")
    await register(zoraida, barrio, business=BUSINESS, category="Artesanía")
    await carmen.wait_for("Nueva solicitud")
    await carmen.say("/miembros")  # her request, with her name, among Carmen's options
    await carmen.tap("Aprobar")
    await zoraida.wait_for("Ya eres parte")

    await zoraida.say("/perfil")
    await zoraida.tap("Nombre")
    await zoraida.say(NAME)
    await zoraida.tap("Dirección")
    await zoraida.say(ADDRESS)
    await zoraida.tap("Mostrar dirección")
    await zoraida.tap("Teléfono")
    await zoraida.say(PHONE_TYPED)
    await zoraida.tap("Mostrar teléfono")
    assert "Wiracocha" in text_of(await beto.say("/directorio xilofono"))
    await zoraida.say("/directorio negocio")
    await zoraida.say("/silencio")
    await zoraida.tap("Sin silencio")

    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await zoraida.wait_for("Te invitan a una reunión")
    await zoraida.tap("Asistiré")
    await zoraida.say("/reuniones")
    await _publish(carmen)
    await carmen.tap("Publicar")
    await zoraida.wait_for("Nueva convocatoria")
    await zoraida.say("/convocatorias")

    await zoraida.say("/alerta")
    await zoraida.tap("sospechosa")
    await zoraida.say(ALERT_TEXT)
    await zoraida.send(emulator.send_location(USER_ID, LATITUDE, LONGITUDE))
    await zoraida.tap("Enviar alerta")
    await beto.wait_for(ALERT_TEXT)
    copy = await carmen.wait_for(ALERT_TEXT)

    # She coordinates another barrio, shares a contact there and turns Beto down (the notice
    # he gets quotes her contact); a third barrio turns her down, in Carmen's own words.
    norte = await make_barrio(runtime, "Barrio Norte", "Machalí")
    await make_coordinator(runtime, zoraida, norte)
    await zoraida.say("/barrio")
    await zoraida.tap("Contacto para vecinos")
    await zoraida.say(CONTACT)
    await beto.say(f"/start {norte.invite_code}")
    await beto.tap("Sí, pedir ingreso")
    await zoraida.wait_for("Nueva solicitud")
    await zoraida.tap("Rechazar")
    await zoraida.tap("Sin motivo")
    assert CONTACT in (await beto.wait_for("no aprobó"))["text"]
    sur = await make_barrio(runtime, "Barrio Sur", "Graneros")
    await make_coordinator(runtime, carmen, sur)
    await zoraida.say(f"/start {sur.invite_code}")
    await zoraida.tap("Sí, pedir ingreso")
    await carmen.wait_for("Nueva solicitud")
    await carmen.tap("Rechazar")
    await carmen.tap("Escribir otro motivo")
    await carmen.say(REASON)
    await carmen.tap("Sí, rechazar")
    await zoraida.wait_for(REASON)
    await zoraida.say("/misdatos")

    # Every trace is there to be found before (so the search below can find it after).
    before = await _dump(runtime)
    assert [t for t in TRACES if t.casefold() not in before] == []

    # The law's promise, in the person's own words: "Sí, borrar todo".
    await zoraida.say("/baja")
    await zoraida.tap("Borrar todos mis datos")
    assert "Borré tus datos" in text_of(await zoraida.tap("Sí, borrar todo"))

    # Life goes on around the erased member, and must not bring her back.
    await carmen.say("/asistencia")
    await carmen.say("/miembros")
    await carmen.tap_data(
        copy["message_id"], copy["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    )
    await beto.wait_for("ya está controlada")
    assert "Zoraida" not in text_of(await beto.say("/directorio bazar"))

    dump = await _dump(runtime)
    log = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    ).casefold()
    for trace in TRACES:
        assert trace.casefold() not in dump, f"{trace!r} is still in the database"
        assert trace.casefold() not in log, f"{trace!r} is in the log"
    assert TOKEN.partition(":")[2].casefold() not in log

    # What the README says stays: the alert's kind and time, without its author or words.
    async with runtime.sessions() as session:
        alert = await session.scalar(select(SecurityAlert))
    assert alert is not None and alert.kind.value == "sospechoso" and alert.author_id is None
    assert alert.description == "" and alert.latitude is None and alert.created_at is not None


async def test_erasing_one_member_leaves_others_drafts_alone(runtime, phone):
    """Ana's name is in "mañana": a coordinator's announcement under way must not notice."""
    from tests.test_broadcasts import _barrio_with_people

    _, carmen, (ana, beto, _) = await _barrio_with_people(runtime, phone)
    await carmen.say("/anuncio")
    await carmen.say("Mañana se corta el agua en la semana de Ana")
    await ana.say("/baja")
    await ana.tap("Borrar todos mis datos")
    await ana.tap("Sí, borrar todo")
    assert "Enviando a 2 socios" in text_of(await carmen.tap("Enviar"))
    await beto.wait_for("se corta el agua")


async def _dump(runtime) -> str:
    """Every value of every row of every table, as text."""
    pieces: list[str] = []
    async with runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                pieces += [_as_text(value) for value in row]
    return "\n".join(pieces).casefold()


def _as_text(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


async def test_a_coordinators_removal_list_forgets_an_erased_member(runtime, phone):
    """Found in review: the removal list's buttons ("Betoriano · Bazar Betoriano") stayed in
    the coordinator's conversation, so that a typed number works, after Betoriano erased."""
    barrio = await make_barrio(runtime, "Barrio Estación", open_to_all=True)
    carmen, betoriano = phone(9901, "Carmen"), phone(9902, "Betoriano")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    await register(betoriano, barrio, business="Bazar Betoriano")
    await carmen.say("/miembros")
    picking = await carmen.tap("Quitar a un socio")
    assert "Betoriano · Bazar Betoriano" in str(picking)

    await betoriano.say("/baja")
    await betoriano.tap("Borrar todos mis datos")
    assert "Borré tus datos" in text_of(await betoriano.tap("Sí, borrar todo"))
    async with runtime.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = (await connection.execute(table.select())).all()
            assert "Betoriano" not in str(rows), f"{table.name} still names Betoriano"
    # Her next number is answered as a list that no longer holds him.
    assert "Betoriano" not in text_of(await carmen.say("1"))


async def test_on_sqlite_the_erased_bytes_leave_the_database_files(runtime, phone):
    """Not only no row: the database file, its free pages included, and its write-ahead log
    no longer hold her name, as soon as the erasure is answered."""
    import asyncio
    from pathlib import Path

    import pytest
    from sqlalchemy import text

    if not runtime.settings.database_url.startswith("sqlite"):
        pytest.skip("a property of SQLite's files")
    barrio = await make_barrio(runtime, open_to_all=True)
    zoraida = phone(8890001, NAME)
    await register(zoraida, barrio, business="Bazar Xilófono Quetzal")
    await zoraida.say("/perfil")  # more pages written with her name
    async with runtime.engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA secure_delete"))).scalar() == 1
    await zoraida.say("/baja")
    await zoraida.tap("Borrar todos mis datos")
    await zoraida.tap("Sí, borrar todo")
    database = Path(runtime.settings.database_url.split(":///", 1)[1])
    for file in (database, database.with_name(database.name + "-wal")):
        content = await asyncio.to_thread(file.read_bytes) if file.exists() else b""
        for trace in (NAME, "Bazar Xilófono Quetzal", "8890001"):
            assert trace.encode() not in content, (file.name, trace)
