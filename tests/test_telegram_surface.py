"""Telegram specifics: the command menu, group chats, long texts, a user who blocked the bot."""

from __future__ import annotations

import httpx

from bot.telegram import split_text
from models import DeliveryStatus
from tests.support import (
    FINAL,
    make_barrio,
    make_coordinator,
    register,
    text_of,
    wait_for_delivery,
)


async def test_commands_are_registered_with_telegram(runtime, emulator):
    names = [c["command"] for c in emulator.commands]
    assert {
        "start",
        "registro",
        "directorio",
        "perfil",
        "barrio",
        "baja",
        "ayuda",
        "cancelar",
    } <= set(names)


async def test_group_chat_answers_only_commands_addressed_to_the_bot(runtime, emulator):
    group = -100123
    plain = emulator.send_text(
        7101, "hola a todos", chat_id=group, chat_type="supergroup", chat_title="Vecinos"
    )
    other_bot = emulator.send_text(
        7101, "/perfil@OtroBot", chat_id=group, chat_type="supergroup", chat_title="Vecinos"
    )
    ours = emulator.send_text(
        7101, "/perfil@BarrioTestBot", chat_id=group, chat_type="supergroup", chat_title="Vecinos"
    )
    await runtime.transport.wait_handled(ours["update_id"])
    assert plain["update_id"] < other_bot["update_id"] < ours["update_id"]
    sent = emulator.sent(group)
    assert len(sent) == 1
    assert (
        "escríbeme por privado" in sent[0]["text"]
        and "https://t.me/BarrioTestBot" in sent[0]["text"]
    )
    assert emulator.sent(7101) == []


async def test_tapping_a_button_closes_its_keyboard_and_notes_the_choice(runtime, phone, emulator):
    barrio = await make_barrio(runtime)
    ana = phone(7102, "Ana")
    await ana.say(f"/start {barrio.invite_code}")
    await ana.say("Ana")
    question = (await ana.say("Almacén Ana"))[-1]
    await ana.tap("Panadería")
    closed = emulator.message(ana.user_id, question["message_id"])
    assert not closed.get("reply_markup") and closed["text"].endswith(
        "👉 🥖 Panadería y pastelería"
    )


def test_long_texts_are_split_at_line_breaks():
    text = "\n".join(f"línea {i} " + "x" * 90 for i in range(100))
    pieces = split_text(text)
    assert all(len(p) <= 4096 for p in pieces) and len(pieces) == 3
    assert "\n".join(pieces) == text
    assert split_text("y" * 5000) == ["y" * 4096, "y" * 904]


async def test_notice_to_a_coordinator_who_blocked_the_bot_is_marked_unreachable(
    runtime, phone, emulator
):
    barrio = await make_barrio(runtime)
    carmen = phone(7103, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    emulator.block(carmen.user_id)
    ana = phone(7104, "Ana")
    await register(ana, barrio)
    delivery = await wait_for_delivery(runtime, lambda d: d.status in FINAL)
    assert delivery is not None and delivery.status == DeliveryStatus.UNREACHABLE
    assert "blocked" in (delivery.last_error or "")


async def test_health_endpoint(runtime):
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{runtime.web_port}/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"


async def test_health_endpoint_reports_a_dead_database():
    from bot.web import create_web_app

    async def broken() -> None:
        raise ConnectionRefusedError("no database")

    transport = httpx.ASGITransport(app=create_web_app(broken))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/healthz")
    assert response.status_code == 503


async def test_help_for_coordinators_mentions_their_commands(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    carmen = phone(7105, "Carmen")
    await register(carmen, barrio)
    assert "/miembros" not in text_of(await carmen.say("/ayuda"))
    await make_coordinator(runtime, carmen, barrio)
    assert "/miembros" in text_of(await carmen.say("/ayuda"))
