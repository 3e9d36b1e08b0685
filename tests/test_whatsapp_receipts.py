"""Delivered and read in the coordinator's report, end to end over both channels: Twilio's
status callbacks (late, repeated, out of order) come after the report, and its button — tapped
on Telegram, or its number typed on WhatsApp — shows what WhatsApp has said so far."""

from __future__ import annotations

from sqlalchemy import select

from handlers import admin, texts
from models import Announcement, Delivery, DeliveryStatus
from tests import test_whatsapp
from tests.support import (
    Phone,
    buttons,
    make_barrio,
    make_coordinator,
    register,
    snapshot,
    text_of,
    wait_for_delivery,
)
from tests.test_reminders import outbox_idle
from tests.test_whatsapp import WhatsAppPhone, _register, option_number, text_of_list

# The WhatsApp end-to-end fixtures: the Twilio emulator, and the bot on both channels.
twilio = test_whatsapp.twilio
both = test_whatsapp.both

ROSA, LUIS = "+56911110001", "+56911110002"


async def _sid(runtime, number: str) -> str:
    row = await wait_for_delivery(
        runtime,
        lambda d: d.recipient == number and d.broadcast is not None and d.status == "sent",
    )
    assert row.platform_message_id is not None
    return row.platform_message_id


async def _report(runtime, phone_number_or_id: str) -> Delivery:
    """The report, once WhatsApp's word on each message is in and the dispatcher asks again
    (its minute job): sent and recorded, so its options answer a typed number."""
    assert runtime.dispatcher is not None
    await runtime.dispatcher.report_unreported()
    return await wait_for_delivery(
        runtime,
        lambda d: (
            d.recipient == phone_number_or_id
            and "ya salió" in d.text
            and d.status == DeliveryStatus.SENT
        ),
    )


def _receipts(replies: list[dict]) -> str:
    return text_of([r for r in replies if "hasta ahora" in (r.get("text") or "")])


async def test_the_report_shows_whatsapps_receipts_when_asked_and_only_to_the_coordination(
    both, twilio, emulator, clock
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    carmen = Phone(emulator, both, 6000, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(both, carmen, barrio)
    ana = Phone(emulator, both, 6001, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    for number in (ROSA, LUIS):
        await _register(WhatsAppPhone(twilio, both, number), barrio.invite_code)
    # Pedro coordinates another barrio: this announcement is none of his business.
    lejano = await make_barrio(both, "Barrio Lejano", "Lolol", open_to_all=True)
    pedro = Phone(emulator, both, 6100, "Pedro")
    await register(pedro, lejano, business="Ferretería Pedro")
    await make_coordinator(both, pedro, lejano)
    await outbox_idle(both, clock)

    await carmen.say("/anuncio")
    await carmen.say("Mañana hay feria en la plaza.")
    await carmen.tap("Enviar")
    rosa_sid, luis_sid = await _sid(both, ROSA), await _sid(both, LUIS)
    await outbox_idle(both, clock)
    # Out of order and twice, as the network may bring them: each message's receipt only
    # moves forward.
    for sid, statuses in (
        (rosa_sid, ["read", "delivered", "sent", "read", "delivered"]),
        (luis_sid, ["delivered", "sent", "delivered"]),
    ):
        assert await twilio.send_status_callbacks(sid, statuses) == [200] * len(statuses)
    await _report(both, "6000")
    report = await carmen.wait_for("Tu anuncio ya salió")
    assert "Entregados: 3 (2 por WhatsApp, 1 por Telegram)" in report["text"]
    assert [b["text"] for b in buttons(report)] == [texts.ANNOUNCE_RECEIPTS_BUTTON]
    [button] = buttons(report)
    async with both.sessions() as session:
        announcement = await session.scalar(select(Announcement))
    assert button["callback_data"] == f"anu:rcp:{announcement.id}"

    # Someone else's tap, a forged or a stale one: the standard answer, nothing changes.
    before = await snapshot(both)
    for person, data, answer in (
        (ana, button["callback_data"], texts.COORDINATORS_ONLY),
        (pedro, button["callback_data"], texts.COORDINATORS_ONLY),
        (carmen, f"anu:rcp:{announcement.id + 1000}", texts.STALE_BUTTON),
        (carmen, "anu:rcp:x", texts.STALE_BUTTON),
        (carmen, "anu:rcp:", texts.STALE_BUTTON),
        (carmen, "anu:rcp:99999999999999999999", texts.STALE_BUTTON),
    ):
        # On an old message of theirs: a stale tap takes the buttons off the message tapped.
        message_id = person.emulator.sent(person.user_id)[0]["message_id"]
        replies = await person.tap_data(message_id, data, forge=True)
        assert answer in text_of(replies), (data, text_of(replies))
        assert "hasta ahora" not in text_of(replies)
    assert await snapshot(both) == before

    shown = _receipts(await carmen.tap("Cuántos lo leyeron"))
    assert "«Mañana hay feria en la plaza.»" in shown
    assert "📱 WhatsApp: 2 enviados, 2 llegaron al teléfono, 1 ya lo leyeron" in shown
    assert "✈️ Telegram: 1 enviados (Telegram no avisa si lo leyeron)" in shown
    assert "No se pudo: 0" in shown and "Por enviar" not in shown

    # Luis reads it later; a late "delivered" after that changes nothing.
    await twilio.send_status_callbacks(luis_sid, ["read", "delivered"])
    again = _receipts(await carmen.tap("Cuántos lo leyeron"))
    assert "📱 WhatsApp: 2 enviados, 2 llegaron al teléfono, 2 ya lo leyeron" in again
    async with both.sessions() as session:
        receipts = (
            await session.scalars(
                select(Delivery.receipt)
                .where(Delivery.broadcast == f"announcement:{announcement.id}")
                .order_by(Delivery.id)
            )
        ).all()
    assert sorted(r or "" for r in receipts) == ["", "read", "read"]


async def test_a_whatsapp_coordinator_types_the_reports_number_to_see_the_receipts(
    both, twilio, emulator, clock
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    async with both.sessions() as session, session.begin():
        await admin.make_coordinator(session, barrio, "whatsapp", ROSA)
    await _register(WhatsAppPhone(twilio, both, LUIS), barrio.invite_code)
    ana = Phone(emulator, both, 6001, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    await outbox_idle(both, clock)

    await rosa.say("anuncio")
    confirm = await rosa.say("Corte de agua el lunes en la mañana.")
    await rosa.say(option_number(confirm, "Enviar"))
    luis_sid = await _sid(both, LUIS)
    await outbox_idle(both, clock)
    await twilio.send_status_callbacks(luis_sid, ["delivered"])
    await _report(both, ROSA)
    report = await rosa.wait_for("Tu anuncio ya salió")
    assert "Entregados: 2 (1 por WhatsApp, 1 por Telegram)" in report
    number = option_number([report], "¿Cuántos lo leyeron?")
    shown = text_of_list(await rosa.say(number))
    assert "📱 WhatsApp: 1 enviados, 1 llegaron al teléfono, 0 ya lo leyeron" in shown
    assert "✈️ Telegram: 1 enviados" in shown
    # Offered again under the counts: the same number asks again.
    await twilio.send_status_callbacks(luis_sid, ["read"])
    again = text_of_list(await rosa.say(option_number([shown], "¿Cuántos lo leyeron?")))
    assert "1 llegaron al teléfono, 1 ya lo leyeron" in again
