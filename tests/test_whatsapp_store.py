"""A webhook is answered only once its row is committed, and a MessageSid is handled once even
when Twilio posts it again while the first copy is being stored. Webhooks that come while others
are being stored are stored together (bot/whatsapp.py, `WhatsAppTransport._store`)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot import whatsapp
from models import InboundUpdate
from tests.support import WAIT_S
from tests.test_whatsapp import ROSA, WhatsAppPhone, both, twilio

__all__ = ["both", "twilio"]  # fixtures

OTHER = "+56911110002"


async def _until(condition) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("never came about")
        await asyncio.sleep(0.01)


def _first_store_held(monkeypatch) -> tuple[list[list[str]], asyncio.Event]:
    """Holds the first group of webhooks before it reaches the database until the event is
    set; returns the MessageSids of every group stored, in order, and that event."""
    groups: list[list[str]] = []
    busy = asyncio.Event()
    real = whatsapp.store_webhooks

    async def held(sessions, webhooks):
        groups.append([sid for sid, _form, _at in webhooks])
        if len(groups) == 1:
            await busy.wait()
        return await real(sessions, webhooks)

    monkeypatch.setattr(whatsapp, "store_webhooks", held)
    return groups, busy


async def _stored_copies(runtime, sid: str) -> int:
    async with runtime.sessions() as session:
        return await session.scalar(
            select(func.count()).select_from(InboundUpdate).where(InboundUpdate.platform_id == sid)
        )


async def test_a_webhook_posted_again_while_its_first_copy_is_being_stored_is_handled_once(
    both, twilio, monkeypatch
):
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await rosa.say("hola")
    rosa.new()
    calls, busy = _first_store_held(monkeypatch)
    first = asyncio.create_task(twilio.send_text(ROSA, "ayuda"))
    await _until(lambda: calls)
    sid = calls[0][0]
    again = asyncio.create_task(twilio.redeliver(sid))
    assert both.whatsapp is not None
    await _until(lambda: len(both.whatsapp._to_store) == 1)  # the copy waits for the next group
    assert not first.done() and not again.done(), "answered before it was stored"
    busy.set()
    assert list(await asyncio.wait_for(asyncio.gather(first, again), WAIT_S)) == [200, 200]
    assert calls == [[sid], [sid]], "the copy was stored in a group of its own"
    await asyncio.wait_for(both.whatsapp.wait_handled(sid), WAIT_S)
    await asyncio.sleep(0.1)  # time for a second turn, were there one
    help_replies = rosa.new()
    assert len(help_replies) == 1 and "ayuda" in help_replies[0].casefold()
    assert await _stored_copies(both, sid) == 1


async def test_a_webhook_delivered_twice_while_the_database_is_busy_is_stored_with_the_next_group(
    both, twilio, monkeypatch
):
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await rosa.say("hola")
    groups, busy = _first_store_held(monkeypatch)
    other = asyncio.create_task(twilio.send_text(OTHER, "hola"))
    await _until(lambda: groups)
    # Twilio posts again when it has no answer in time: both copies wait for the database.
    first = asyncio.create_task(twilio.send_text(ROSA, "ayuda"))
    await _until(lambda: twilio.last_inbound_sid not in (None, *groups[0]))
    sid = twilio.last_inbound_sid
    again = asyncio.create_task(twilio.redeliver(sid))
    assert both.whatsapp is not None
    await _until(lambda: len(both.whatsapp._to_store) == 2)  # both copies in, waiting
    assert not first.done() and not again.done(), "answered before it was stored"
    busy.set()
    assert list(await asyncio.wait_for(asyncio.gather(other, first, again), WAIT_S)) == [200] * 3
    assert groups[1] == [sid, sid], "both copies were stored together"
    await asyncio.wait_for(both.whatsapp.wait_handled(sid), WAIT_S)
    help_replies = rosa.new()
    assert len(help_replies) == 1 and "ayuda" in help_replies[0].casefold()
    assert await _stored_copies(both, sid) == 1


async def test_stored_webhooks_are_handled_at_start_and_one_too_old_gets_a_word(
    settings, twilio, clock, emulator
):
    """Stored, then the bot stopped before handling them: at the next start the recent one is
    handled, and whoever sent one too old to act on is told it was missed, not left unanswered."""
    from datetime import timedelta

    from bot.emulator.twilio_state import DEFAULT_ACCOUNT_SID, SANDBOX_SENDER
    from bot.runtime import Runtime
    from handlers import texts
    from tests.test_whatsapp import _with_whatsapp

    configured = _with_whatsapp(settings, twilio)

    def webhook(sid: str, number: str, body: str) -> dict[str, str]:
        return {
            "MessageSid": sid,
            "AccountSid": DEFAULT_ACCOUNT_SID,
            "From": f"whatsapp:{number}",
            "To": f"whatsapp:{SANDBOX_SENDER}",
            "Body": body,
            "NumMedia": "0",
        }

    stopped, gone = "+56911110003", "+56911110004"
    first = Runtime(configured, clock=clock)
    await first.start()
    old = clock() - timedelta(hours=2)
    await whatsapp.store_webhooks(
        first.sessions,
        [
            ("SM" + "a" * 32, webhook("SM" + "a" * 32, ROSA, "/alerta"), old),
            # OTHER's old message is followed by a recent one: nothing of theirs is lost.
            ("SM" + "c" * 32, webhook("SM" + "c" * 32, OTHER, "perfil"), old),
            ("SM" + "b" * 32, webhook("SM" + "b" * 32, OTHER, "hola"), clock()),
            # An old STOP is honoured, not answered; a message of two days ago is past the
            # 24 hours in which a reply may go.
            ("SM" + "d" * 32, webhook("SM" + "d" * 32, stopped, "STOP"), old),
            ("SM" + "e" * 32, webhook("SM" + "e" * 32, gone, "hola"), clock() - timedelta(days=2)),
        ],
    )
    await first.stop()

    runtime = Runtime(configured, clock=clock)
    await runtime.start()
    try:
        twilio.set_webhook(f"http://127.0.0.1:{runtime.web_port}/whatsapp")
        rosa, other = WhatsAppPhone(twilio, runtime, ROSA), WhatsAppPhone(twilio, runtime, OTHER)
        await other.wait_for("Soy Barrio Conecta")
        missed = await rosa.wait_for("se me pasó tu último mensaje")
        assert missed.startswith(texts.MISSED_MESSAGE.split(":")[0])
        assert not any("¿Qué está pasando?" in body for body in rosa.bodies())  # no old /alerta
        assert not any("se me pasó" in body for body in other.bodies())
        from tests.test_reminders import outbox_idle

        await outbox_idle(runtime, clock)
        assert twilio.sent(stopped) == [] and twilio.sent(gone) == []
        async with runtime.sessions() as session:
            rows = (await session.scalars(select(InboundUpdate))).all()
        assert rows and all(r.processed_at is not None and r.payload is None for r in rows)
    finally:
        await runtime.stop()
