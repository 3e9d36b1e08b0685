"""Commands in the core, not in Telegram's command entity: escape words win at any step, a
command's name typed without its slash works outside a dialogue, a greeting is answered."""

from __future__ import annotations

from sqlalchemy import func, select

from models import Conversation, Member, Membership
from tests.support import buttons, make_barrio, register, text_of
from tests.test_broadcasts import _barrio_with_people


async def _count(runtime, model) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_cancelar_typed_at_the_name_step_is_a_way_out_not_a_name(runtime, phone):
    barrio = await make_barrio(runtime)
    ana = phone(7701, "Ana")
    for typed in ("Cancelar", "¡CANCELAR!", "cancelar."):
        await ana.say(f"/start {barrio.invite_code}")
        assert "lo dejamos hasta ahí" in text_of(await ana.say(typed)), typed
    assert await _count(runtime, Member) == 0
    assert await _count(runtime, Conversation) == 0  # nothing kept of her


async def test_escape_words_win_inside_any_dialogue(runtime, phone):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await carmen.say("/reunion")
    helped = text_of(await carmen.say("menú"))
    assert "Barrio Conecta une a los negocios" in helped and "/reunion" in helped
    assert "lo dejamos hasta ahí" in text_of(await carmen.say("CANCELAR"))
    await ana.say("/perfil")
    leaving = (await ana.say("baja"))[-1]
    assert "¿Qué quieres hacer?" in leaving["text"]
    assert any("borrar" in b["text"].casefold() for b in buttons(leaving))


async def test_commands_typed_without_the_slash_work_outside_a_dialogue(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana, beto = phone(7711, "Ana"), phone(7712, "Beto")
    await register(ana, barrio)
    await register(beto, barrio, business="Panadería Beto", category="Panadería")
    assert "No hay reuniones próximas" in text_of(await ana.say("Reuniones"))
    assert "Panadería Beto" in text_of(await ana.say("DIRECTORIO pan"))
    assert "No te entendí" not in text_of(await ana.say("perfil"))


async def test_a_greeting_gets_help_and_the_menu(runtime, phone):
    stranger = phone(7721, "Rosa")
    answer = text_of(await stranger.say("Hola!"))
    assert "No te entendí" not in answer and "¡Hola! 👋 Soy Barrio Conecta" in answer
    assert "Toca «Registrarme»" in answer and "/directorio" not in answer
    # Help to someone not registered: what opens now, not the member's twelve commands.
    helped = text_of(await stranger.say("/ayuda"))
    assert "/registro" in helped and "/alerta" in helped and "/directorio" not in helped


async def test_asking_to_join_in_plain_words_starts_registering(runtime, phone):
    await make_barrio(runtime, open_to_all=True)
    for user_id, typed in enumerate(("quiero inscribirme", "Registrarme", "me quiero unirme!")):
        person = phone(7725 + user_id, "Rosa")
        answer = text_of(await person.say(typed))
        assert "Primero necesito inscribirte" not in answer, typed
        assert "¿Cómo te llamas?" in answer, typed


async def test_a_typed_number_answers_the_notice_the_outbox_delivered(runtime, phone):
    """A coordinator gets a join request (Aprobar / Rechazar) as a notice and types "1"."""
    from tests.support import make_coordinator

    barrio = await make_barrio(runtime, "Barrio Norte")
    carmen = phone(7731, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    await carmen.say("/ayuda")  # her last reply from the bot offers the main menu
    beto = phone(7732, "Beto")
    await register(beto, barrio, business="Bazar Beto")
    await carmen.wait_for("Nueva solicitud")
    assert "Aprobaste a Beto" in text_of(await carmen.say("1"))
    await beto.wait_for("Ya eres parte")
    # Answered: "1" now is the main menu's first option again, not the old request.
    assert "ya estaba resuelta" not in text_of(await carmen.say("1"))


async def test_several_lists_in_one_reply_number_on_from_each_other(runtime, phone):
    from tests.support import make_coordinator

    barrio = await make_barrio(runtime, "Barrio Norte")
    carmen = phone(7741, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    ana, beto = phone(7742, "Ana"), phone(7743, "Beto")
    await register(ana, barrio)
    await register(beto, barrio, business="Bazar Beto")
    await carmen.wait_for("Beto")
    listing = await carmen.say("/miembros")
    requests = [m for m in listing if buttons(m)]
    assert [m["text"].count("Bazar Beto") for m in requests] == [0, 1]
    # Ana's request offers options 1 and 2, Beto's 3 and 4: "3" approves Beto.
    await carmen.say("3")
    await beto.wait_for("Ya eres parte")
    async with runtime.sessions() as session:
        pending = await session.scalar(
            select(func.count()).select_from(Membership).where(Membership.status == "pending")
        )
    assert pending == 1  # Ana's still waits
