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
