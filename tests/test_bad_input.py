"""Every wrong input gets a clear Spanish answer and leaves the database exactly as it was."""

from __future__ import annotations

import pytest

from tests.support import make_barrio, register, snapshot, text_of


async def _at_name_step(runtime, phone):
    barrio = await make_barrio(runtime)
    ana = phone(8001, "Ana")
    await ana.say(f"/start {barrio.invite_code}")
    return ana


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u200b\u2063", "muy corto"),  # invisible characters: what "empty" looks like on Telegram
        ("x" * 4096, "muy largo"),
        ("🙂🎉🙂", "con letras"),
        ("12345", "con letras"),
        ("A", "muy corto"),
        ("Hola", "«Hola» no me sirve como respuesta aquí"),
        ("volver", "«volver» no me sirve como respuesta aquí"),
        ("Sí.", "«Sí.» no me sirve como respuesta aquí"),
    ],
    ids=[
        "invisible",
        "max-telegram-length",
        "only-emoji",
        "only-digits",
        "one-letter",
        "a-greeting",
        "a-way-back",
        "a-yes",
    ],
)
async def test_bad_name_is_explained_and_changes_nothing(runtime, phone, text, expected):
    ana = await _at_name_step(runtime, phone)
    before = await snapshot(runtime)
    answer = text_of(await ana.say(text))
    assert expected in answer
    assert await snapshot(runtime) == before


async def test_ten_thousand_characters_pasted(runtime, phone):
    """Telegram splits a 10,000-character paste into messages of at most 4096."""
    ana = await _at_name_step(runtime, phone)
    before = await snapshot(runtime)
    paste = "palabra " * 1250
    for start in range(0, len(paste), 4096):
        assert "muy largo" in text_of(await ana.say(paste[start : start + 4096]))
    assert await snapshot(runtime) == before


@pytest.mark.parametrize("kind", ["photo", "sticker", "voice", "location"])
async def test_media_where_text_was_asked(runtime, phone, emulator, kind):
    ana = await _at_name_step(runtime, phone)
    before = await snapshot(runtime)
    if kind == "photo":
        update = emulator.send_photo(ana.user_id, caption=None)
    elif kind == "sticker":
        update = emulator.send_sticker(ana.user_id)
    elif kind == "voice":
        update = emulator.send_voice(ana.user_id)
    else:
        update = emulator.send_location(ana.user_id, -34.17, -70.74)
    answer = text_of(await ana.send(update))
    assert "escribas con letras" in answer
    assert await snapshot(runtime) == before


async def test_edited_message(runtime, phone, emulator):
    ana = await _at_name_step(runtime, phone)
    typed = emulator.send_text(ana.user_id, "Ana")
    await ana.send(typed)
    before = await snapshot(runtime)
    answer = text_of(
        await ana.send(emulator.edit_text(ana.user_id, typed["message"]["message_id"], "Anita"))
    )
    assert "editaste" in answer
    assert await snapshot(runtime) == before


async def test_button_from_an_old_message(runtime, phone):
    barrio = await make_barrio(runtime)
    ana = phone(8002, "Ana")
    await ana.say(f"/start {barrio.invite_code}")
    await ana.say("Ana")
    await ana.say("Almacén Ana")
    rubros = ana.last()
    await ana.say("/cancelar")
    before = await snapshot(runtime)
    answer = text_of(
        await ana.tap_data(
            rubros["message_id"], rubros["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        )
    )
    assert "ya no sirve" in answer
    assert await snapshot(runtime) == before


@pytest.mark.parametrize(
    "data",
    [
        "apr:ok:999999",
        "apr:ok:²",
        "zzz:1",
        "reg:ok:listed",
        "dir:cat:nope",
        "menu:rm -rf",
        "x" * 64,
    ],
)
async def test_forged_callback_data(runtime, phone, data):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(8003, "Ana")
    await register(ana, barrio)
    message_id = ana.last()["message_id"]
    before = await snapshot(runtime)
    answer = text_of(await ana.tap_data(message_id, data, forge=True))
    assert "botón" in answer or "coordinación" in answer
    assert await snapshot(runtime) == before


async def test_non_member_using_coordinator_command(runtime, phone):
    await make_barrio(runtime)
    stranger = phone(8004, "Extraño")
    before = await snapshot(runtime)
    assert "solo para la coordinación" in text_of(await stranger.say("/miembros"))
    assert await snapshot(runtime) == before


async def test_socio_cannot_approve_someone_elses_request(runtime, phone):
    barrio = await make_barrio(runtime)
    ana = phone(8005, "Ana")
    await register(ana, barrio)
    socio = phone(8006, "Beto")
    await register(socio, barrio)
    before = await snapshot(runtime)
    answer = text_of(await socio.tap_data(socio.last()["message_id"], "apr:ok:1", forge=True))
    assert "solo para la coordinación" in answer or "no es válido" in answer
    assert await snapshot(runtime) == before


async def test_unknown_invite_code(runtime, phone):
    await make_barrio(runtime)
    ana = phone(8007, "Ana")
    before = await snapshot(runtime)
    assert "No encontré ese código" in text_of(await ana.say("/start NOEXISTE"))
    assert await snapshot(runtime) == before


async def test_unknown_text_and_command_get_a_menu(runtime, phone):
    ana = phone(8008, "Ana")
    answer = await ana.say("hola")
    assert "Registrarme" in str(answer[-1]["reply_markup"])
    answer = await ana.say("/nada")
    assert "No te entendí" in text_of(answer)


async def test_volver_at_a_profile_edit_is_never_the_new_business_name(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(8011, "Ana")
    await register(ana, barrio)
    await ana.say("/perfil")
    await ana.say("negocio")
    before = await snapshot(runtime)
    assert "no me sirve como respuesta" in text_of(await ana.say("volver"))
    assert await snapshot(runtime) == before
