"""The outbox dispatcher: sends queued `Delivery` rows in priority order, paced per channel.

Guarantee (also in the README): every queued message is sent at most once, and is sent unless
the person is unreachable or the platform keeps failing.

- Each channel is claimed and paced on its own: one claim loop per channel, with its own
  windows, its own rows set aside and its pacer's window size. A channel held back — a 429
  pauses it, or its pacer is just slower — holds back nothing of another:
  a Telegram security alert never waits behind a WhatsApp slot. Priority order holds within a
  channel.
- A row is `sending` only while its request may be on its way. The dispatcher picks a small
  window of due rows, which stay `pending`, books each one's slot with the channel's pacer and
  waits for it; just before the slot (`MARK_LEAD_S`) it marks the row `sending` (committed;
  rows whose slots fall within `MARK_AHEAD_S` of each other share one transaction), stamps
  `sending_since`, and sends at the slot. A row whose own chat is busy is set aside, still
  `pending`, until the chat is free, rather than holding up the slots behind it. A 429 voids
  the slots booked before it: rows still waiting are never marked, or go back to `pending`, and
  no attempt is counted, as nothing of them was sent. A crash while the outbox waits — for the
  pacer or out a 429's `retry_after` — leaves those rows `pending`, and they are sent once
  later.
- A row `sending` for longer than any live send can take (`STALE_SENDING_S`, counted from
  `sending_since`) is a send whose answer was lost: its process died, or its outcome could not
  be written. Neither Telegram nor Twilio offers an idempotency key, so it is marked
  `ambiguous` and counted, never resent, and its broadcast is reported if that finished it.
  Every dispatcher looks for such rows at start and every `SWEEP_EVERY_S`, so the rows of a
  replica that was killed settle without a restart, and a replica starting next to a live one
  (two processes on one PostgreSQL database) leaves that one's rows in flight alone. Rows are
  marked at most `MARK_AHEAD_S` + `MARK_LEAD_S` before their requests, which bounds how many a
  crash leaves: about a tenth of a second of sends per channel, and those whose answers are on
  the way.
- Outcomes are written by primary key with one Core executemany per kind of outcome, which does
  not mind rows that vanished meanwhile (erasing a member deletes their deliveries, even one in
  flight). A failed write is retried with backoff, a bounded number of times; rows whose outcome
  still could not be written stay `sending` and become `ambiguous` once stale.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.core import Option, Rendered
from handlers.outbox import goes_silently
from models import Announcement, ChannelIdentity, Delivery, DeliveryStatus, Priority
from models.queries import broadcast_counts

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
SAFETY = 0.985
# Requests arrive a little bunched (the emulator or Telegram is busy too): count our sends
# over a window slightly longer than the platform's one second.
COUNTED_WINDOW_S = 1.01
MAX_BACKOFF_S = 300.0
WINDOW_S = 0.1  # a window holds the sends of about this long
# Windows booked at once: the next is booked while the last one's outcomes are written. Booking
# marks nothing, so what a crash can leave `sending` is bounded by `MARK_AHEAD_S` of sends. (3
# measured no better than 2 in `alert_200_flood`.)
WINDOWS_AHEAD = 2
# Rows whose slots are this close together are marked `sending` in one transaction: one commit
# per window rather than per send, and no row is `sending` much before its request leaves.
MARK_AHEAD_S = WINDOW_S
# The mark starts this much before the first of those slots, so that its commit does not make
# the sends late and bunch them up behind it.
MARK_LEAD_S = 0.025
# A row whose own chat is busy (the per-chat limit) for longer than this is set aside in memory
# until the chat is free, instead of booking a slot that far ahead: a booked slot holds up every
# slot after it. For an alert, direct replies to that chat wait meanwhile, until a little after
# it is free: or someone writing without pause would keep their chat busy and never get it.
CHAT_WAIT_INLINE_S = WINDOW_S
CHAT_HOLD_MARGIN_S = 0.5
# While security alerts go out, direct replies get at most this share of the overall rate (see
# `Pacer`): one every two seconds at Telegram's 30/s, for the ~7 s an alert to 200 members
# takes. Measured with `alert_200_flood` (bench/outbox.py): 1/20 put the alert's last delivery
# at 1.11× its floor, 1/30 at 1.09–1.11×, 1/60 at 1.09–1.10×; the rest of the gap is the load
# the flood itself puts on the process.
REPLY_SHARE_DURING_ALERTS = 1 / 60
# How long the favour outlives the last alert slot booked: it bridges the gaps between windows.
ALERT_HOLD_S = 0.5
# Writing a window's outcomes: the database may be busy or briefly away.
RECORD_ATTEMPTS = 8
RECORD_FIRST_PAUSE_S = 0.1
RECORD_MAX_PAUSE_S = 5.0
# How long one write may wait for a lock or a connection before it fails: SQLite's busy
# timeout and the pool's timeout on PostgreSQL are both 30 s (models/db.py).
DATABASE_WAIT_S = 30.0
# A send with no answer after this long is given up on, and as it may have arrived it counts as
# ambiguous. Far above the senders' own timeouts (Twilio's 10 s a request, PTB's 5 s): it is
# the outbox's bound, so that a live row cannot stay `sending` for ever.
SEND_TIMEOUT_S = 60.0
# The longest a live row stays `sending`: marked up to MARK_AHEAD_S + MARK_LEAD_S before its
# slot; its window's outcomes are written together, after the window's last slot (its rows
# span about WINDOW_S, plus CHAT_WAIT_INLINE_S for a busy chat) and the pacer's last check
# (`turn`, about COUNTED_WINDOW_S at worst); the send itself; then every attempt at writing
# the outcomes, each of which may wait DATABASE_WAIT_S, with the pauses between them. About
# 5 minutes, nearly all of it a database that refuses for minutes on end.
LONGEST_SENDING_S = (
    MARK_AHEAD_S
    + MARK_LEAD_S
    + WINDOW_S
    + CHAT_WAIT_INLINE_S
    + COUNTED_WINDOW_S
    + SEND_TIMEOUT_S
    + RECORD_ATTEMPTS * DATABASE_WAIT_S
    + sum(
        min(RECORD_MAX_PAUSE_S, RECORD_FIRST_PAUSE_S * 2**attempt)
        for attempt in range(RECORD_ATTEMPTS - 1)
    )
)
# A row `sending` for longer than this was left by a process that died. Twice the bound: it
# assumes each of those waits ends on time, and a stalled event loop or two replicas' clocks
# a little apart must not make a live row look stale. (A live row taken for stale anyway
# would only be reported ambiguous early: its real outcome, when written, replaces that, and
# nothing is ever resent.)
STALE_SENDING_S = 2 * LONGEST_SENDING_S
# How often each dispatcher looks for stale rows (by its clock): rows a killed replica left
# settle, and its broadcasts get their reports, while the others keep running.
SWEEP_EVERY_S = 60.0
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
FINAL = tuple(status for status in DeliveryStatus if status not in UNFINISHED)


class Unreachable(Exception):
    """The person blocked the bot or the chat does not exist: stop, do not retry."""


class RetryLater(Exception):
    """The platform asked us to slow down (429): nothing was sent. `whole_channel`: every
    send waits (a rate limit); otherwise only this row does (WhatsApp's daily cap on new
    conversations, which replies inside a person's window do not count against)."""

    def __init__(self, seconds: float, *, whole_channel: bool = True) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds
        self.whole_channel = whole_channel


class SendFailed(Exception):
    """The platform refused (`permanent`) or failed before sending (retry with backoff)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


class SendAmbiguous(Exception):
    """The request may have reached the platform but no answer came (a read timeout)."""


class Sender(Protocol):
    """A channel's way out. The reasons its exceptions carry are stored in `last_error` and
    logged, so they must name what went wrong, never the message text or the recipient.
    `kind` says what the message is ("announcement", "alert"…, see `message_kind`), for a
    channel that must send some kinds another way (WhatsApp's templates); `silent`: without
    sound, where the channel can (a personal notice in the recipient's quiet hours).
    A sender may also have `async after_recorded(message_ids)`, called once the rows that
    sent those messages are written (WhatsApp applies status callbacks that came first)."""

    channel: str

    async def send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | None,
        kind: str | None = None,
        *,
        silent: bool = False,
    ) -> str: ...


# A reply to what the person wrote, queued rather than sent at once (a message of theirs the
# bot missed while it was stopped): sent as a direct reply is, with no kind, so inside the
# 24-hour window their own message opened on WhatsApp.
LATE_REPLY = "reply"


def message_kind(broadcast: str | None) -> str | None:
    """What a delivery is, from what it is part of: "announcement:12" → "announcement"; a
    notice to one person (a join request, an approval) is "notice"; a `LATE_REPLY`, none."""
    if broadcast == LATE_REPLY:
        return None
    return broadcast.partition(":")[0] if broadcast else "notice"


def traceback_without_values(error: BaseException) -> str:
    """Where an exception was raised and its kind, for each exception in its chain, without
    the messages: those carry values (the text being sent, what a person typed), and the log
    carries ids only."""
    lines = ["Traceback (exception messages left out):"]
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines += traceback.format_list(traceback.extract_tb(current.__traceback__))
        lines.append(f"{type(current).__module__}.{type(current).__qualname__}\n")
        current = current.__cause__ or current.__context__
    return "".join(lines).rstrip()


class Pacer:
    """Spaces sends so that at most `overall_per_s` leave per second, and `per_chat_per_s`
    to any one chat: evenly, so the platform never sees a burst, and never a 429.

    Direct replies and the outbox share the overall budget first come, first served, except
    while security alerts are going out (the outbox calls `favour_alerts` as it books their
    slots): then replies may take at most `reply_share` of the slots, one every
    `overall_gap / reply_share` seconds, and the alert the rest. A few people writing fast can
    otherwise take the slots a barrio's alert needs; per-sender limits at intake bound how much
    they can ask for, this bounds what they get while it matters. A share and not a stop, so
    whoever asks something during a long alert still gets an answer, a little later. The
    favour lapses `ALERT_HOLD_S` after the last alert slot was booked.

    The outbox can also hold one chat (`hold_chat`) while an alert to it waits for that chat's
    per-chat limit: replies to that chat wait until shortly after, or someone writing without
    pause would keep their own chat busy and never get the alert.
    """

    def __init__(
        self,
        overall_per_s: float,
        per_chat_per_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        reply_share: float = REPLY_SHARE_DURING_ALERTS,
    ) -> None:
        self.limit_per_s = overall_per_s
        # A hair under the limit: evenly spaced sends at exactly the limit put limit + 1 of
        # them in some one-second windows, and the platform answers that one with a 429.
        overall_per_s *= SAFETY
        self.overall_gap = 1.0 / overall_per_s
        self.per_second = max(1, math.floor(overall_per_s))
        self.recent: collections.deque[float] = collections.deque()
        self.chat_gap = 1.0 / per_chat_per_s
        self.clock = clock
        self.next_overall = 0.0
        self.next_for_chat: dict[str, float] = {}
        # How many 429 pauses there have been: a slot booked before the latest one is void.
        self.pauses = 0
        self.reply_gap = self.overall_gap / reply_share
        self.alerts_until = -math.inf
        self.next_reply = -math.inf
        # Chats kept free of direct replies until then, for an outbox row waiting for them.
        self.held_chats: dict[str, float] = {}

    def reserve(self, chat: str, *, per_chat: bool = True) -> float:
        """Book the earliest allowed start for a send to `chat`; returns seconds to wait.
        Direct replies pass `per_chat=False`: the person is waiting for them, and Telegram
        allows a private chat a short burst."""
        now = self.clock()
        start = max(now, self.next_overall)
        if per_chat:
            start = max(start, self.next_for_chat.get(chat, 0.0))
        self.next_overall = start + self.overall_gap
        self.next_for_chat[chat] = max(self.next_for_chat.get(chat, 0.0), start + self.chat_gap)
        if len(self.next_for_chat) > 50_000:
            self.next_for_chat = {c: t for c, t in self.next_for_chat.items() if t > now}
        return start - now

    def chat_wait(self, chat: str) -> float:
        """How much later than the next overall slot `chat` may get its next paced send."""
        start = max(self.clock(), self.next_overall)
        return max(0.0, self.next_for_chat.get(chat, 0.0) - start)

    async def acquire(self, chat: str, *, per_chat: bool = True, reply: bool = False) -> None:
        """Wait for this send's slot (`reply`: a direct reply, which yields to alerts). A 429
        pause that starts while waiting moves the slot past it."""
        while reply:
            if (wait := self.reply_wait(chat)) <= 0:
                break
            await asyncio.sleep(wait)
        while True:
            pauses = self.pauses
            if (wait := self.reserve(chat, per_chat=per_chat)) > 0:
                await asyncio.sleep(wait)
            if self.pauses == pauses:
                break
        await self.turn()

    async def turn(self) -> None:
        """The last check before a send leaves: beyond even spacing, count the sends that
        actually left in the last second. A stalled event loop releases late sends together,
        and the platform counts arrivals, not our plan."""
        while True:
            now = self.clock()
            while self.recent and self.recent[0] <= now - COUNTED_WINDOW_S:
                self.recent.popleft()
            if len(self.recent) < self.per_second:
                self.recent.append(now)
                return
            await asyncio.sleep(self.recent[0] + COUNTED_WINDOW_S - now + 0.001)

    def pause(self, seconds: float) -> None:
        self.next_overall = max(self.next_overall, self.clock() + seconds)
        self.pauses += 1

    def favour_alerts(self, seconds: float = ALERT_HOLD_S) -> None:
        self.alerts_until = max(self.alerts_until, self.clock() + seconds)

    def hold_chat(self, chat: str, seconds: float) -> None:
        """Keep direct replies out of `chat` for `seconds`: an outbox row waits for it."""
        until = self.clock() + seconds
        self.held_chats[chat] = max(self.held_chats.get(chat, until), until)

    def reply_wait(self, chat: str | None = None) -> float:
        """Seconds a direct reply (to `chat`) must wait: for a chat held for the outbox, or for
        its share while alerts go out. 0 means go, and that reply has taken its share."""
        now = self.clock()
        if chat is not None and (held := self.held_chats.get(chat)) is not None:
            if now < held:
                return held - now
            del self.held_chats[chat]
        if now >= self.alerts_until:
            return 0.0
        if now >= self.next_reply:
            self.next_reply = now + self.reply_gap
            return 0.0
        return min(self.next_reply, self.alerts_until) - now

    def window(self) -> int:
        return max(1, math.ceil(WINDOW_S / self.overall_gap))


@dataclass
class DispatchStats:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    ambiguous: int = 0
    # Rows that waited in a window and went back to `pending` unsent (a 429 voided their slot).
    put_back: int = 0
    # Rows set aside until their own chat was free.
    deferred: int = 0
    # Rows not sent because they would have arrived too late (`expires_at`) or their template
    # said they no longer apply (the meeting was cancelled, the person declined).
    expired: int = 0


BroadcastDone = Callable[[AsyncSession, str, dict[str, int]], Awaitable[None]]


# Words for templated rows about to go out, by row id; None: the row must not be sent.
Renderer = Callable[
    [AsyncSession, Sequence[Delivery], datetime], Awaitable[dict[int, Rendered | None]]
]


@dataclass
class _Slot:
    """A picked row and the slot booked for it: `at` on the event loop's clock, `pauses` the
    pacer's pause count at booking (a 429 since voids it)."""

    id: int
    channel: str
    recipient: str
    priority: int
    broadcast: str | None
    at: float = 0.0
    pauses: int = 0


@dataclass
class _Outcome:
    """What to write for one row: the columns to set, and the address found unreachable."""

    row_id: int
    values: dict[str, Any] = field(default_factory=dict)
    blocked: tuple[str, str] | None = None


@dataclass
class _Lane:
    """One channel's claim loop: its pacer, and the rows its windows hold."""

    channel: str
    pacer: Pacer | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Rows picked by one of this lane's windows and not finished with: still `pending` while
    # they wait for their slots, so the next pick must not take them again.
    held: set[int] = field(default_factory=set)
    # Held rows set aside until their own chat is free (about `at`); picked first then.
    aside: list[_Slot] = field(default_factory=list)

    def window_size(self) -> int:
        return self.pacer.window() if self.pacer is not None else 1


class OutboxDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Sequence[Sender],
        pacers: dict[str, Pacer],
        *,
        clock: Callable[[], datetime],
        on_broadcast_done: BroadcastDone | None = None,
        render: Renderer | None = None,
    ) -> None:
        self.sessions = sessions
        self.render = render
        self.senders = {s.channel: s for s in senders}
        self.pacers = pacers
        self.clock = clock
        self.on_broadcast_done = on_broadcast_done
        self.stats = DispatchStats()
        self._lanes = {channel: _Lane(channel, pacers.get(channel)) for channel in self.senders}
        self._stopped = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        # Callers do not say which channel they queued for: every lane looks.
        for lane in self._lanes.values():
            lane.wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self.wake()

    async def recover(self) -> int:
        """Rows left `sending` longer than `STALE_SENDING_S` (or from before `sending_since`
        was stamped) become `ambiguous`, and the broadcasts this finishes are reported; rows
        another dispatcher has in flight are left alone (see the module docstring)."""
        stale = self.clock() - timedelta(seconds=STALE_SENDING_S)
        async with self.sessions() as session, session.begin():
            # One conditional UPDATE: two replicas sweeping at once settle each row once, and
            # a row whose outcome is written meanwhile is not touched.
            settled = (
                await session.scalars(
                    update(Delivery)
                    .where(
                        Delivery.status == DeliveryStatus.SENDING,
                        or_(Delivery.sending_since.is_(None), Delivery.sending_since < stale),
                    )
                    .values(
                        status=DeliveryStatus.AMBIGUOUS,
                        last_error="process stopped mid-send",
                        sending_since=None,
                    )
                    .returning(Delivery.broadcast)
                    .execution_options(synchronize_session=False)
                )
            ).all()
        self.stats.ambiguous += len(settled)
        if settled:
            log.warning(
                "%d deliveries were left `sending` (stopped mid-send, or the outcome was never"
                " written); not resent",
                len(settled),
            )
        for broadcast in sorted({b for b in settled if b is not None}):
            try:
                await self.report_if_done(broadcast)
            except Exception as error:
                log.error("reporting %s failed\n%s", broadcast, _trace(error))
        return len(settled)

    async def run(self, idle_poll_s: float = 1.0) -> None:
        """Settle what stopped processes left, then send until `stop`: one claim loop per
        channel, and the periodic sweep for stale rows."""
        while not self._stopping:
            try:
                await self.recover()
                break
            except Exception as error:
                log.error("outbox recovery failed; retrying\n%s", _trace(error))
                await self._pause(idle_poll_s)
        if self._stopping:
            return
        try:
            await self.report_unreported()
        except Exception as error:
            log.error("reporting finished broadcasts failed\n%s", _trace(error))
        await asyncio.gather(
            *(self._run_lane(lane, idle_poll_s) for lane in self._lanes.values()),
            self._sweep(idle_poll_s),
        )

    async def _run_lane(self, lane: _Lane, idle_poll_s: float) -> None:
        while not self._stopping:
            lane.wake.clear()
            try:
                busy = await self._drain(lane)
            except Exception as error:
                log.error("outbox pass failed (%s)\n%s", lane.channel, _trace(error))
                busy = 0
            if not busy:
                timeout = idle_poll_s
                if lane.aside:
                    free = min(slot.at for slot in lane.aside)
                    timeout = min(timeout, max(0.0, free - asyncio.get_running_loop().time()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wake.wait(), timeout)

    async def _sweep(self, idle_poll_s: float) -> None:
        """Every `SWEEP_EVERY_S` by the dispatcher's clock, settle stale rows (`recover`)."""
        due = self.clock() + timedelta(seconds=SWEEP_EVERY_S)
        while await self._pause(idle_poll_s):
            if self.clock() < due:
                continue
            try:
                await self.recover()
            except Exception as error:
                log.error("settling stale deliveries failed\n%s", _trace(error))
            due = self.clock() + timedelta(seconds=SWEEP_EVERY_S)

    async def drain(self) -> int:
        """Send what is due now on every channel, each at its own pace and at once; returns
        how many rows were picked."""
        picked = await asyncio.gather(*(self._drain(lane) for lane in self._lanes.values()))
        return sum(picked)

    async def _drain(self, lane: _Lane) -> int:
        """Send what is due now on `lane`'s channel, one small window at a time,
        `WINDOWS_AHEAD` booked; returns how many were picked. Returns early when something new
        is queued, so an alert queued during a long broadcast goes out next."""
        picked = 0
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping:
                window = await self._pick_window(lane)
                if not window:
                    break
                picked += len(window)
                lane.held.update(slot.id for slot in window)
                task = asyncio.create_task(self._send_window(lane, window))
                in_flight.add(task)
                task.add_done_callback(_forget_and_log(in_flight))
                if len(in_flight) >= WINDOWS_AHEAD:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                if lane.wake.is_set():
                    break
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        return picked

    async def _pick_window(self, lane: _Lane) -> list[_Slot]:
        """Rows set aside whose chat is free now, then the most urgent due rows of the lane's
        channel that none of its windows holds. Picking changes nothing: the rows stay
        `pending` until their slots come, and the mark then decides which dispatcher sends a
        row when two share a database."""
        size = lane.window_size()
        free = (slot for slot in lane.aside if not self._chat_busy(slot))
        ready = sorted(free, key=lambda slot: slot.priority)[:size]
        if ready:
            lane.aside = [slot for slot in lane.aside if slot not in ready]
        if len(ready) == size:
            return ready
        async with self.sessions() as session:
            due = (
                select(
                    Delivery.id,
                    Delivery.channel,
                    Delivery.recipient,
                    Delivery.priority,
                    Delivery.broadcast,
                )
                .where(
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.not_before <= self.clock(),
                    Delivery.channel == lane.channel,
                )
                # The index's own order (status, channel, priority, not_before, id): no sort of the
                # whole backlog per pick. Within a priority, the longest due goes first.
                .order_by(Delivery.priority, Delivery.not_before, Delivery.id)
                .limit(size - len(ready))
            )
            if lane.held:
                due = due.where(Delivery.id.not_in(lane.held))
            rows = (await session.execute(due)).all()
        # Those set aside first within their priority: they have waited longest.
        return sorted([*ready, *(_Slot(*row) for row in rows)], key=lambda s: s.priority)

    async def _send_window(self, lane: _Lane, window: list[_Slot]) -> None:
        loop = asyncio.get_running_loop()
        outcomes: list[_Outcome] = []
        sends: list[asyncio.Task[_Outcome]] = []
        recorded = False
        aside: list[_Slot] = []
        try:
            waiting = self._book(lane, window, aside, loop.time())
            while waiting:
                if not await self._until(waiting[0].at - MARK_LEAD_S):
                    break  # stopping: rows not marked yet simply stay `pending`
                # Rows whose slot a 429 voided were never marked: they stay `pending` as they
                # are, to be picked again for a slot after the pause.
                live = [slot for slot in waiting if not self._voided(slot)]
                self.stats.put_back += len(waiting) - len(live)
                horizon = loop.time() + MARK_AHEAD_S
                batch = [slot for slot in live if slot.at <= horizon]
                waiting = [slot for slot in live if slot.at > horizon]
                if not batch:
                    continue
                try:
                    marked = await self._mark(batch)
                except Exception as error:
                    # Not marked, not sent: they stay `pending`. Unless the commit went through
                    # unseen, in which case they stay `sending` and turn `ambiguous` once
                    # stale: never sent twice either way.
                    log.error("marking %d deliveries failed\n%s", len(batch), _trace(error))
                    break
                sends += [
                    asyncio.create_task(self._send_one(marked[slot.id], slot))
                    for slot in batch
                    if slot.id in marked
                ]
            outcomes += await asyncio.gather(*sends)
            recorded = await self._record(outcomes)
        finally:
            lane.held.difference_update(slot.id for slot in window if slot not in aside)
        if not recorded:
            return
        await self._after_recorded(lane, outcomes)
        # After the commit, in its own transaction: two windows of one broadcast finishing at
        # once must each see the other's rows; the report itself is guarded against doubles.
        for broadcast in {slot.broadcast for slot in window if slot.broadcast}:
            try:
                await self.report_if_done(broadcast)
            except Exception as error:
                log.error("reporting %s failed\n%s", broadcast, _trace(error))

    def _book(
        self, lane: _Lane, window: list[_Slot], aside: list[_Slot], now: float
    ) -> list[_Slot]:
        """Book each row's slot, in priority order; returns the booked rows by slot time.
        A row whose own chat is busy for a while is set aside (into `aside`, still held)."""
        booked = []
        pacer = lane.pacer
        for slot in window:
            if pacer is not None:
                alert = slot.priority <= Priority.ALERT
                if alert:
                    pacer.favour_alerts()
                if busy := self._chat_busy(slot):
                    self.stats.deferred += 1
                    if alert:
                        pacer.hold_chat(slot.recipient, busy + CHAT_HOLD_MARGIN_S)
                        pacer.favour_alerts(busy + ALERT_HOLD_S)
                    slot.at = now + busy
                    aside.append(slot)
                    lane.aside.append(slot)
                    continue
                slot.pauses = pacer.pauses
                slot.at = now + pacer.reserve(slot.recipient)
            else:
                slot.at = now
            booked.append(slot)
        return sorted(booked, key=lambda slot: slot.at)

    def _chat_busy(self, slot: _Slot) -> float:
        """How much longer than the others `slot` would wait for its own chat (0: not)."""
        pacer = self.pacers.get(slot.channel)
        busy = pacer.chat_wait(slot.recipient) if pacer is not None else 0.0
        return busy if busy > CHAT_WAIT_INLINE_S else 0.0

    def _voided(self, slot: _Slot) -> bool:
        pacer = self.pacers.get(slot.channel)
        return pacer is not None and pacer.pauses != slot.pauses

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds`; False if the dispatcher is stopping."""
        if seconds > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), seconds)
        return not self._stopping

    async def _until(self, at: float) -> bool:
        """Wait until `at` (event loop clock); False if the dispatcher is stopping."""
        return await self._pause(at - asyncio.get_running_loop().time())

    async def _mark(self, batch: list[_Slot]) -> dict[int, Delivery]:
        """Mark `batch` `sending`, just before its requests; returns the rows this dispatcher
        switched from `pending`, as they are now. A row erased meanwhile is gone, one another
        dispatcher took is not ours."""
        async with self.sessions() as session, session.begin():
            rows = await session.scalars(
                update(Delivery)
                .where(
                    Delivery.id.in_([slot.id for slot in batch]),
                    Delivery.status == DeliveryStatus.PENDING,
                )
                .values(status=DeliveryStatus.SENDING, sending_since=self.clock())
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
            marked = {delivery.id: delivery for delivery in rows.all()}
            expired = await self._render(session, list(marked.values()))
            for row_id in expired:
                del marked[row_id]
            return marked

    async def _render(self, session: AsyncSession, rows: list[Delivery]) -> list[int]:
        """Give templated rows their words as of now (the rendered text is what the row keeps);
        returns the rows that must not go, marked `expired` in the same transaction."""
        now = self.clock()
        expired = [d.id for d in rows if d.expires_at is not None and d.expires_at <= now]
        templated = [d for d in rows if d.template is not None and d.id not in expired]
        words: dict[int, Rendered | None] = {}
        if templated and self.render is not None:
            try:
                words = await self.render(session, templated, now)
            except Exception as error:
                # A bug in a template must not hold back the rest of the window (alerts
                # included): those rows go with the words they were queued with.
                log.error("rendering %d deliveries failed\n%s", len(templated), _trace(error))
            for row_id, rendered in words.items():
                if rendered is None:
                    expired.append(row_id)
                    continue
                delivery = next(d for d in templated if d.id == row_id)
                delivery.text = rendered.text
                delivery.options = [
                    {"label": o.label, "payload": o.payload} for o in rendered.options
                ]
        if expired:
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(expired))
                .values(
                    status=DeliveryStatus.EXPIRED,
                    last_error="too late to mean anything",
                    sending_since=None,
                )
                .execution_options(synchronize_session=False)
            )
            self.stats.expired += len(expired)
            log.info("%d deliveries expired before they could be sent; dropped", len(expired))
        return expired

    async def _send_one(self, delivery: Delivery, slot: _Slot) -> _Outcome:
        """Send one marked row at its slot; returns what to write for it."""
        delay = slot.at - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        pacer = self.pacers.get(delivery.channel)
        if pacer is not None and not self._voided(slot):
            await pacer.turn()
        if self._voided(slot):
            # A 429 came while this row waited for its slot: nothing of it was sent, and it is
            # no attempt. Back to `pending`, for a slot after the pause.
            self.stats.put_back += 1
            return _Outcome(delivery.id, {"status": DeliveryStatus.PENDING})
        sender = self.senders[delivery.channel]
        options = [Option(o["label"], o["payload"]) for o in delivery.options]
        attempts = delivery.attempts + 1
        outcome = _Outcome(delivery.id)
        try:
            message_id = await _within_timeout(
                sender.send(
                    delivery.recipient,
                    delivery.text,
                    options,
                    delivery.photo,
                    kind=message_kind(delivery.broadcast),
                    silent=goes_silently(delivery.priority),
                )
            )
        except RetryLater as later:
            self.stats.rate_limited += 1
            if pacer is not None and later.whole_channel:
                pacer.pause(later.seconds)
            # A 429 is the platform's pacing, not a failed attempt.
            outcome.values = {
                "status": DeliveryStatus.PENDING,
                "not_before": self.clock() + timedelta(seconds=later.seconds),
            }
        except Unreachable as error:
            self.stats.unreachable += 1
            outcome.values = {
                "status": DeliveryStatus.UNREACHABLE,
                "attempts": attempts,
                "last_error": str(error)[:255],
            }
            outcome.blocked = (delivery.channel, delivery.recipient)
        except SendAmbiguous as error:
            self.stats.ambiguous += 1
            outcome.values = {
                "status": DeliveryStatus.AMBIGUOUS,
                "attempts": attempts,
                "last_error": str(error)[:255],
            }
        except SendFailed as error:
            outcome.values = {"attempts": attempts, "last_error": str(error)[:255]}
            if error.permanent or attempts >= MAX_ATTEMPTS:
                self.stats.failed += 1
                outcome.values["status"] = DeliveryStatus.FAILED
            else:
                self.stats.retried += 1
                backoff = min(MAX_BACKOFF_S, 2.0**attempts)
                outcome.values |= {
                    "status": DeliveryStatus.PENDING,
                    "not_before": self.clock() + timedelta(seconds=backoff),
                }
        except Exception as error:  # a bug in a sender must not stop the outbox
            # Its message may quote what was being sent: the kind only, here and in the row.
            log.error("sender crashed on delivery %s\n%s", delivery.id, _trace(error))
            self.stats.failed += 1
            outcome.values = {
                "status": DeliveryStatus.FAILED,
                "attempts": attempts,
                "last_error": f"sender crashed ({type(error).__name__})"[:255],
            }
        else:
            self.stats.sent += 1
            outcome.values = {
                "status": DeliveryStatus.SENT,
                "attempts": attempts,
                "sent_at": self.clock(),
                "platform_message_id": message_id,
            }
        return outcome

    async def _after_recorded(self, lane: _Lane, outcomes: list[_Outcome]) -> None:
        """Tell the lane's sender which messages its rows now name, if it wants to know (a
        WhatsApp status callback may have come before them)."""
        hook = getattr(self.senders[lane.channel], "after_recorded", None)
        sent = [
            o.values["platform_message_id"] for o in outcomes if o.values.get("platform_message_id")
        ]
        if hook is None or not sent:
            return
        try:
            await hook(sent)
        except Exception as error:
            # The receipts stay unapplied (the rows keep `sent`) and are pruned in a day.
            log.error("applying early receipts failed\n%s", _trace(error))

    async def _record(self, outcomes: list[_Outcome]) -> bool:
        """Write the outcomes, retrying with backoff; False if the database never took them.

        By primary key, as Core executemany (one per set of columns): a row that vanished
        meanwhile matches nothing and is skipped, where the ORM's bulk update would refuse the
        whole window (StaleDataError) and leave its other rows `sending`."""
        table = Delivery.__table__
        assert isinstance(table, Table)
        writes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for outcome in outcomes:
            if outcome.values:
                # Every outcome takes its row out of `sending`, back to `pending` included.
                values = {**outcome.values, "sending_since": None}
                columns = tuple(sorted(values))
                params = {f"new_{name}": value for name, value in values.items()}
                writes.setdefault(columns, []).append({"row_id": outcome.row_id, **params})
        blocked = {outcome.blocked for outcome in outcomes if outcome.blocked is not None}
        if not writes and not blocked:
            return True
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                async with self.sessions() as session, session.begin():
                    for columns, rows in writes.items():
                        statement = (
                            update(table)
                            .where(table.c.id == bindparam("row_id"))
                            .values({name: bindparam(f"new_{name}") for name in columns})
                        )
                        await session.execute(statement, rows)
                    for channel, address in blocked:
                        await session.execute(
                            update(ChannelIdentity)
                            .where(
                                ChannelIdentity.channel == channel,
                                ChannelIdentity.external_id == address,
                            )
                            .values(unreachable_at=self.clock())
                        )
                return True
            except Exception as error:
                if attempt == RECORD_ATTEMPTS:
                    # Those sent stay `sending`, and turn `ambiguous` once stale.
                    log.error(
                        "recording %d outcomes failed %d times; given up\n%s",
                        len(outcomes),
                        attempt,
                        _trace(error),
                    )
                    return False
                log.warning(
                    "recording %d outcomes failed (%s); retrying",
                    len(outcomes),
                    type(error).__name__,
                )
                pause = RECORD_FIRST_PAUSE_S * 2 ** (attempt - 1)
                await asyncio.sleep(min(RECORD_MAX_PAUSE_S, pause))
        return False

    async def report_unreported(self) -> None:
        """Broadcasts that finished without passing through a send (every recipient already
        unreachable, say) still get their report."""
        if self.on_broadcast_done is None:
            return
        async with self.sessions() as session:
            ids = (
                await session.scalars(
                    select(Announcement.id).where(Announcement.reported_at.is_(None))
                )
            ).all()
        for announcement_id in ids:
            await self.report_if_done(f"announcement:{announcement_id}")

    async def report_if_done(self, broadcast: str) -> None:
        if self.on_broadcast_done is None:
            return
        async with self.sessions() as session, session.begin():
            # Runs after every window of a broadcast: one index probe while rows remain,
            # the full count only once none do.
            unfinished = select(Delivery.id).where(
                Delivery.broadcast == broadcast,
                Delivery.status.in_(UNFINISHED),
            )
            if await session.scalar(unfinished.limit(1)) is not None:
                return
            counts = await broadcast_counts(session, broadcast)
            if not counts:
                return
            await self.on_broadcast_done(session, broadcast, counts)
        self.wake()


def _trace(error: BaseException) -> str:
    return traceback_without_values(error)


async def _within_timeout(send: Awaitable[str]) -> str:
    """`send`, given up after `SEND_TIMEOUT_S`: its request may have arrived, so ambiguous."""
    limit = asyncio.timeout(SEND_TIMEOUT_S)
    try:
        async with limit:
            return await send
    except TimeoutError:
        if not limit.expired():
            raise  # the sender's own: a bug in it, as any other exception it lets out
        raise SendAmbiguous(f"no answer within {SEND_TIMEOUT_S:.0f} s") from None


def _forget_and_log(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # A bug outside the sends themselves. Rows the window had marked stay `sending`
            # and become `ambiguous` once stale, never resent; the rest stay `pending`.
            log.error("a window of the outbox failed\n%s", _trace(error))

    return done
