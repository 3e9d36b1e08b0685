"""Quiet hours hold what can wait (announcements, invitations, reminders) until the morning,
never a personal notice: a join request, its answer, a coordinator's report. Inside the
recipient's quiet hours that goes at once, silently on Telegram (`disable_notification`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import Delivery, DeliveryStatus
from tests.support import Phone, make_barrio, make_coordinator, register, text_of, wait_for_delivery
from tests.test_whatsapp import ROSA, WhatsAppPhone, _register, both, twilio

__all__ = ["both", "twilio"]  # the WhatsApp fixtures, used by name

# The clock starts at 12:00 in Santiago; everyone's quiet hours are 22:00–08:00 by default.
TO_22_10 = timedelta(hours=10, minutes=10)


async def _barrio_with_coordinator(runtime, phone, *, open_to_all: bool = False):
    barrio = await make_barrio(runtime, "Barrio Estación", "Rancagua", open_to_all=open_to_all)
    carmen = phone(7101, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    carmen.new()
    return barrio, carmen


async def test_a_join_request_at_night_and_its_approval_arrive_at_once_silently(
    runtime, phone, clock
):
    barrio, carmen = await _barrio_with_coordinator(runtime, phone)
    clock.advance(TO_22_10)
    ana = phone(7102, "Ana")
    await register(ana, barrio, business="Almacén La Esquina")
    assert ana.last()["disable_notification"] is False  # the reply to what she just did

    request = await carmen.wait_for("Nueva solicitud")
    assert "Almacén La Esquina" in request["text"]
    assert request["disable_notification"] is True

    clock.advance(timedelta(minutes=20))  # 22:30
    assert "Aprobaste a Ana" in text_of(await carmen.tap("Aprobar"))
    approved = await ana.wait_for("Buenas noticias")
    assert approved["disable_notification"] is True
    said = text_of(await ana.say("/silencio"))
    assert "sin sonido, los avisos que no pueden esperar" in said


async def test_by_day_a_personal_notice_rings(runtime, phone):
    barrio, carmen = await _barrio_with_coordinator(runtime, phone)
    ana = phone(7103, "Ana")
    await register(ana, barrio)
    request = await carmen.wait_for("Nueva solicitud")
    assert request["disable_notification"] is False
    await carmen.tap("Aprobar")
    approved = await ana.wait_for("Buenas noticias")
    assert approved["disable_notification"] is False


async def test_an_announcement_at_night_still_waits_for_the_morning(runtime, phone, clock):
    barrio, carmen = await _barrio_with_coordinator(runtime, phone, open_to_all=True)
    ana = phone(7104, "Ana")
    await register(ana, barrio)
    clock.advance(TO_22_10)
    await carmen.say("/anuncio")
    await carmen.say("Mañana se corta el agua de 9 a 12.")
    assert "Enviando a 1 persona." in text_of(await carmen.tap("Enviar"))
    async with runtime.sessions() as session:
        waiting = (
            await session.scalars(select(Delivery).where(Delivery.text.contains("agua")))
        ).all()
    assert [(d.status, d.not_before.astimezone(runtime.settings.zone).hour) for d in waiting] == [
        (DeliveryStatus.PENDING, 8)
    ]
    assert not any("se corta el agua" in t for t in ana.texts())

    clock.advance(timedelta(hours=9, minutes=51))  # 08:01
    runtime.dispatcher.wake()
    got = await ana.wait_for("se corta el agua")
    assert got["disable_notification"] is False
    report = await carmen.wait_for("Tu anuncio ya salió")
    assert report["disable_notification"] is False  # morning: it rings


async def test_the_report_of_an_announcement_sent_at_night_arrives_silently(runtime, phone, clock):
    barrio, carmen = await _barrio_with_coordinator(runtime, phone, open_to_all=True)
    rosa = phone(7105, "Rosa")
    await register(rosa, barrio)
    await rosa.say("/silencio")
    await rosa.tap("Sin silencio")
    clock.advance(TO_22_10)
    await carmen.say("/anuncio")
    await carmen.say("Mañana hay feria en la plaza.")
    await carmen.tap("Enviar")
    assert (await rosa.wait_for("hay feria"))["disable_notification"] is False
    report = await carmen.wait_for("Tu anuncio ya salió")
    assert "Entregados: 1" in report["text"]
    assert report["disable_notification"] is True


async def test_an_alert_at_night_still_rings(runtime, phone, clock):
    barrio, carmen = await _barrio_with_coordinator(runtime, phone, open_to_all=True)
    ana = phone(7106, "Ana")
    await register(ana, barrio)
    clock.advance(TO_22_10)
    await ana.say("/alerta")
    await ana.tap("Incendio")
    await ana.say("Sale humo del local 3")
    await ana.tap("Seguir sin ubicación")
    await ana.tap("Enviar alerta")
    alert = await carmen.wait_for("Incendio en Barrio Estación")
    assert alert["disable_notification"] is False


async def test_on_whatsapp_the_answer_at_night_goes_at_once(both, twilio, emulator, clock):
    """WhatsApp has no silent messages: the answer goes at once all the same, inside the
    24-hour window the request opened, rather than at 08:00 when it may be closed."""

    def phone(user_id: int, name: str) -> Phone:
        return Phone(emulator, both, user_id, name)

    barrio, carmen = await _barrio_with_coordinator(both, phone)
    clock.advance(TO_22_10)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    request = await carmen.wait_for("Nueva solicitud")
    assert "Rosa Díaz" in request["text"] and request["disable_notification"] is True
    clock.advance(timedelta(minutes=20))
    await carmen.tap("Aprobar")
    assert "Ya eres parte de Barrio Estación" in await rosa.wait_for("Buenas noticias")
    sent = await wait_for_delivery(
        both, lambda d: d.channel == "whatsapp" and d.status == DeliveryStatus.SENT
    )
    assert sent.not_before == sent.created_at
    # Nor does /silencio promise Rosa "sin sonido".
    said = "\n".join(await rosa.say("SILENCIO"))
    assert "alertas de seguridad y los avisos que no pueden esperar" in said
    assert "sin sonido" not in said
