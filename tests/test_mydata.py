"""`/misdatos` end to end (Ley 21.719, access and portability): the member gets one JSON file
with everything kept about them; someone without a registration is told nothing is kept."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from handlers import texts
from tests.support import TOKEN, make_barrio, make_coordinator, register, snapshot, text_of
from tests.test_meetings import _call_meeting

ANA = 7400001
LATITUDE, LONGITUDE = -34.170133, -70.740922
SANTIAGO_SUMMER = timedelta(hours=-3)


async def _downloaded(emulator, message) -> bytes:
    """The file behind a sent document, fetched the way a Telegram client does."""
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:
        found = await client.post(
            f"/bot{TOKEN}/getFile", json={"file_id": message["document"]["file_id"]}
        )
        path = found.json()["result"]["file_path"]
        response = await client.get(f"/file/bot{TOKEN}/{path}")
    assert response.status_code == 200
    return response.content


def _local(stamp: str) -> datetime:
    """An ISO 8601 instant with its offset; Santiago is at UTC-3 in late November."""
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() == SANTIAGO_SUMMER, stamp
    return moment


async def test_a_member_gets_everything_kept_about_them(runtime, phone, emulator, clock):
    started = clock().replace(microsecond=0)  # the file gives whole seconds
    barrio = await make_barrio(runtime, "Barrio Estación", open_to_all=True)
    feria = await make_barrio(runtime, "Barrio Feria", "Machalí", open_to_all=True)
    lejano = await make_barrio(runtime, "Barrio Lejano", "Lolol")  # needs approval
    carmen = phone(7400000, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    # Someone must be able to answer Lejano's requests, or it takes none.
    luis = phone(7400003, "Luis")
    await register(luis, lejano, business="Ferretería Luis")
    await make_coordinator(runtime, luis, lejano)
    ana = phone(ANA, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    beto = phone(7400002, "Beto")
    await register(beto, barrio, business="Negocio Beto")

    # Phone shown in the directory, address kept but not shown.
    await ana.say("/perfil")
    await ana.tap("Teléfono")
    await ana.say("9 1234 5678")
    await ana.tap("Mostrar teléfono")
    await ana.tap("Dirección")
    await ana.say("Pasaje Los Aromos 45")

    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan a una reunión")
    await ana.tap("Asistiré")

    await ana.say("/alerta")
    await ana.tap("Robo")
    await ana.say("Forzaron la reja del local 12")
    await ana.send(emulator.send_location(ANA, LATITUDE, LONGITUDE))
    assert "Alerta enviada" in text_of(await ana.tap("Enviar alerta"))

    # History: a barrio joined and left, and a request still waiting.
    await ana.say(f"/start {feria.invite_code}")
    await ana.tap("Sí, pedir ingreso")
    await ana.say("/baja")
    await ana.tap("Salir de Barrio Feria")
    await ana.tap("Sí, salir")
    await ana.say(f"/start {lejano.invite_code}")
    await ana.tap("Sí, pedir ingreso")

    sent = await ana.say("/misdatos")
    assert len(sent) == 1
    message = sent[0]
    assert message["method"] == "sendDocument"
    assert message["document"]["file_name"] == "mis-datos-barrio-conecta.json"
    assert message["caption"] == texts.MYDATA_SENT
    raw = await _downloaded(emulator, message)
    assert "Almacén Ana".encode() in raw  # UTF-8 as is, not \u escapes
    assert raw.count(b"\n") > 50  # indented, for a person to read
    data = json.loads(raw.decode("utf-8"))

    assert list(data) == [
        "generado",
        "nota",
        "perfil",
        "consentimiento",
        "canales",
        "membresias",
        "reuniones",
        "invitaciones",
        "alertas",
        "directorio",
        "mensajes",
        "conversacion",
    ]
    assert set(data["nota"]) == set(data) - {"nota"}
    # What the bot sent her is hers too: the meeting invitation, for one.
    assert any(
        "Te invitan a una reunión" in m["texto"] and m["para"] == "ti" for m in data["mensajes"]
    )
    assert [i["reunion"] for i in data["invitaciones"]] == [r["reunion"] for r in data["reuniones"]]
    assert data["conversacion"] is None
    assert all(isinstance(note, str) and note for note in data["nota"].values())
    assert _local(data["generado"]) >= started

    assert data["perfil"] == {
        "nombre": "Ana",
        "negocio": "Almacén Ana",
        "rubro": "🛒 Almacén y abarrotes",
        "direccion": "Pasaje Los Aromos 45",
        "telefono": "+56912345678",
        "en_directorio": True,
        "mostrar_telefono": True,
        "mostrar_direccion": False,
        "horario_silencio": {"desde": "22:00", "hasta": "08:00"},
        "resumen_semanal": False,
    }
    consent = _local(data["consentimiento"]["fecha"])
    assert started <= consent <= _local(data["generado"])
    assert data["canales"] == [{"canal": "telegram", "id": str(ANA), "recibe_avisos": True}]

    memberships = data["membresias"]
    assert [(m["barrio"], m["rol"], m["estado"]) for m in memberships] == [
        ("Barrio Estación", "integrante", "aprobada"),
        ("Barrio Feria", "integrante", "retirada"),
        ("Barrio Lejano", "integrante", "pendiente"),
    ]
    for entry in memberships:
        assert started <= _local(entry["creada"])
    assert _local(memberships[0]["decidida"]) == consent  # open barrio: in at once
    assert _local(memberships[1]["decidida"]) >= _local(memberships[1]["creada"])
    assert memberships[2]["decidida"] is None

    [answer] = data["reuniones"]
    assert answer["reunion"] == "Reunión mensual de socios"
    assert answer["barrio"] == "Barrio Estación"
    # Thursday 26 November 2026, 19:00 in Santiago, as typed.
    assert answer["fecha"] == "2026-11-26T19:00:00-03:00"
    assert answer["respuesta"] == "Asistiré"
    assert started <= _local(answer["respondida"])

    [alert] = data["alertas"]
    assert alert["barrio"] == "Barrio Estación"
    assert alert["tipo"] == "🚨 Robo"
    assert alert["descripcion"] == "Forzaron la reja del local 12"
    assert alert["ubicacion"] == {"latitud": LATITUDE, "longitud": LONGITUDE}
    assert alert["estado"] == "abierta"
    assert started <= _local(alert["creada"])

    assert data["directorio"] == {
        "apareces": True,
        "barrios": ["Barrio Estación"],
        "lo_que_ven": {
            "negocio": "Almacén Ana",
            "nombre": "Ana",
            "rubro": "🛒 Almacén y abarrotes",
            "telefono": "+56912345678",
        },
    }
    # And that is what a neighbour's search shows: the phone, not the address.
    beto.new()
    seen = text_of(await beto.say("/directorio almacen ana"))
    assert "Almacén Ana — Ana" in seen and "+56912345678" in seen
    assert "Pasaje Los Aromos 45" not in seen


async def test_someone_out_of_the_directory_is_told_so(runtime, phone, emulator):
    barrio = await make_barrio(runtime, "Barrio Estación", open_to_all=True)
    rosa = phone(7400010, "Rosa")
    await register(rosa, barrio, listed=False, business="Bazar Rosa")
    data = json.loads(await _downloaded(emulator, (await rosa.say("/misdatos"))[-1]))
    assert data["perfil"]["en_directorio"] is False
    assert data["directorio"] == {"apareces": False, "barrios": [], "lo_que_ven": None}
    assert data["reuniones"] == [] and data["alertas"] == []


async def test_someone_not_registered_is_told_nothing_is_kept(runtime, phone):
    await make_barrio(runtime, "Barrio Estación", open_to_all=True)
    before = await snapshot(runtime)
    stranger = phone(7400020, "Pedro")
    answer = await stranger.say("/misdatos")
    assert [m["method"] for m in answer] == ["sendMessage"]
    assert answer[0]["text"] == texts.MYDATA_NONE
    assert "Primero necesito inscribirte" not in answer[0]["text"]
    # Asking keeps nothing either: not even a conversation row.
    assert await snapshot(runtime) == before


async def test_halfway_through_registering_the_answers_are_not_data_yet(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Estación", open_to_all=True)
    pedro = phone(7400030, "Pedro")
    await pedro.say(f"/start {barrio.invite_code}")
    await pedro.say("Pedro")
    answer = await pedro.say("/misdatos")
    assert all(m["method"] == "sendMessage" for m in answer)
    assert answer[0]["text"] == texts.MYDATA_NONE_YET
    # The registration goes on where it was.
    assert "¿Cómo se llama tu negocio?" in answer[-1]["text"]
    await pedro.say("Verdulería Pedro")
    await pedro.tap("Almacén")
    assert "/misdatos" in pedro.last()["text"]
