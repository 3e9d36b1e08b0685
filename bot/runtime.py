"""The running bot: database, Telegram transport, outbox dispatcher and web app on one loop.

Follows PTB's custom-webhook pattern: the `Application` lifecycle is driven by hand
(`initialize`/`start`/`stop`/`shutdown`) so the web server and the dispatcher share its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram import Bot, Update
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot import files, inbound, whatsapp
from bot.inbound import DurablePoller
from bot.settings import Settings
from bot.telegram import (
    PerChatUpdateProcessor,
    TelegramSender,
    TelegramTransport,
    register_commands,
)
from bot.web import MalformedUpdate, create_web_app
from bot.whatsapp import WhatsAppSender, WhatsAppTransport
from handlers import admin, digest, registration, reminders, series
from handlers.broadcasts import BroadcastReports
from handlers.dialogue import Dialogue
from models import ReminderKind, db
from models.entities import utcnow
from scheduler import retention
from scheduler.outbox import OutboxDispatcher, Pacer, Sender
from scheduler.reminders import ReminderLoop

log = logging.getLogger(__name__)
HOUSEKEEPING_FIRST_RUN = timedelta(minutes=1)
# At stop, failed turns still waiting to be marked handled get this long to be recorded.
SETTLE_MARKS_S = 5.0


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        serve_web: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if settings.token is None and not settings.whatsapp_configured:
            raise ValueError("set TELEGRAM_BOT_TOKEN, or Twilio's WhatsApp settings, or both")
        # PTB 22 deprecates integer `retry_after`; opting in to timedelta silences the warning
        # that would otherwise stand in for every RetryAfter it raises.
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        self.settings = settings
        self.serve_web = serve_web
        self.clock = clock
        self.engine = db.create_engine(settings.database_url)
        self.sessions = db.session_factory(self.engine, clock)
        # Telegram, WhatsApp or both: each is there only when configured.
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = (
            self._build_application() if settings.token is not None else None
        )
        self.whatsapp: WhatsAppTransport | None = None
        self.twilio: Client | None = None
        self.dispatcher: OutboxDispatcher | None = None
        self.reminders: ReminderLoop | None = None
        self.dialogue: Dialogue | None = None
        self.transport: TelegramTransport | None = None
        self.outbox_bot: Bot | None = None
        self.poller: DurablePoller | None = None
        self._poller_task: asyncio.Task[None] | None = None
        self.scheduler = AsyncIOScheduler(timezone=settings.zone)
        self.web_port: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._web: uvicorn.Server | None = None

    def _build_application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        api = self.settings.telegram_api_base_url
        builder = (
            ApplicationBuilder()
            .token(self.settings.token or "")
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            .concurrent_updates(PerChatUpdateProcessor(self.settings.telegram_concurrency))
            # One HTTP connection per concurrent turn; PTB's default pool of one serialises them.
            .connection_pool_size(self.settings.telegram_concurrency + 2)
        )
        # No PTB Updater: it acknowledges updates before they are processed (bot/inbound.py).
        return builder.updater(None).build()

    async def start(self) -> None:
        await db.upgrade(self.engine)
        application = self.application
        senders: list[Sender] = []
        pacers: dict[str, Pacer] = {}
        if application is not None:
            await application.initialize()
            pacer = Pacer(self.settings.telegram_rate_per_s, self.settings.telegram_chat_rate_per_s)
            # The outbox gets its own connections: busy turns must not starve its sends into
            # pool timeouts (and turns must not wait behind a broadcast).
            api = self.settings.telegram_api_base_url
            self.outbox_bot = Bot(
                self.settings.token or "",
                base_url=f"{api}/bot",
                base_file_url=f"{api}/file/bot",
                request=HTTPXRequest(connection_pool_size=2 * pacer.window() + 2),
            )
            await self.outbox_bot.initialize()
            telegram_sender = TelegramSender(self.outbox_bot)
            telegram_sender.fetch_photo = self._photo
            senders.append(telegram_sender)
            pacers[telegram_sender.channel] = pacer
        whatsapp_sender = self._whatsapp_sender()
        if whatsapp_sender is not None:
            rate = self.settings.whatsapp_rate_per_s
            senders.append(whatsapp_sender)
            pacers[whatsapp_sender.channel] = Pacer(rate, rate)
        zone = self.settings.zone
        self.dispatcher = OutboxDispatcher(
            self.sessions,
            senders,
            pacers,
            clock=self.clock,
            on_broadcast_done=BroadcastReports(self.clock, zone),
            render=functools.partial(reminders.render, default=zone),
        )
        self.reminders = ReminderLoop(
            self.sessions,
            clock=self.clock,
            zone=zone,
            firers={**reminders.FIRERS, ReminderKind.DIGEST: digest.fire},
            planners=[
                functools.partial(reminders.plan_missing, default=zone),
                functools.partial(digest.plan_next, default=zone),
                functools.partial(series.extend_all, default=zone),
            ],
            on_enqueued=self.dispatcher.wake,
        )
        bot_username = (
            application.bot.username
            if application is not None
            else self.settings.telegram_bot_username or ""
        )
        channels = [sender.channel for sender in senders]
        # An administrator on a channel this deployment does not run could never be reached.
        admins = [a for a in self.settings.admins if a[0] in channels]
        unreachable = len(self.settings.admins) - len(admins)
        if unreachable:
            log.warning(
                "%d administrators are on a channel this deployment does not run; "
                "they get nothing (channels: %s)",
                unreachable,
                ", ".join(channels),
            )
        if not admins:
            await self._warn_if_unanswered()
        self.dialogue = Dialogue(
            self.sessions,
            bot_username,
            clock=self.clock,
            zone=zone,
            alerts_per_hour=self.settings.alerts_per_hour,
            on_enqueued=self.dispatcher.wake,
            on_planned=self.reminders.wake,
            channels=channels,
            admins=admins,
        )
        if application is not None:
            self.transport = TelegramTransport(self.dialogue, pacers["telegram"])
            self.transport.install(application)
            await register_commands(application.bot, linking=len(senders) > 1)
            await application.start()
        if whatsapp_sender is not None:
            self.whatsapp = WhatsAppTransport(
                self.dialogue,
                whatsapp_sender,
                pacers[whatsapp_sender.channel],
                self.sessions,
                self.clock,
                auth_token=self._twilio_token(),
                public_base_url=self.settings.public_base_url,
                concurrency=self.settings.whatsapp_concurrency,
            )
            # Stored before the bot stopped and never handled: handled now, in order.
            for form in await whatsapp.unprocessed_webhooks(self.sessions, self.clock()):
                self.whatsapp.schedule(form)
        self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="outbox"))
        self._tasks.append(asyncio.create_task(self.reminders.run(), name="reminders"))
        telegram_webhook = (
            application is not None and self.settings.effective_telegram_mode == "webhook"
        )
        secret = self.settings.telegram_webhook_secret.get_secret_value()
        if application is not None and telegram_webhook:
            # Before the webhook can deliver anything new: older updates first.
            for update in await inbound.unprocessed(self.sessions, application.bot, self.clock()):
                await application.update_queue.put(update)
        if self.serve_web or telegram_webhook or self.whatsapp is not None:
            await self._start_web(secret, telegram_webhook)
        if whatsapp_sender is not None:
            # No public URL (a test, the demo): Twilio's emulator reaches this process.
            base = self.settings.public_base_url or f"http://{self.settings.host}:{self.web_port}"
            if whatsapp_sender.status_callback is None:
                whatsapp_sender.status_callback = f"{base}/whatsapp/status"
            whatsapp_sender.files_base_url = base
            whatsapp_sender.fetch_photo = self._photo
        if application is not None and telegram_webhook:
            await application.bot.set_webhook(
                f"{self.settings.public_base_url}/telegram",
                secret_token=secret,
                allowed_updates=Update.ALL_TYPES,
            )
        elif application is not None:
            await application.bot.delete_webhook()
            self.poller = DurablePoller(
                application.bot, self.sessions, application.update_queue, self.clock
            )
            self._poller_task = asyncio.create_task(self.poller.run(), name="poller")
        # Housekeeping also runs a minute after each start: a bot restarted more often than
        # every 6 hours must still forget on time. (APScheduler's own clock only says when
        # to look; what is old is decided with the runtime's clock.)
        first = datetime.now(UTC) + HOUSEKEEPING_FIRST_RUN
        for job in (self._forget_inbound, self._forget_abandoned, self._prune_deliveries):
            self.scheduler.add_job(job, "interval", hours=6, next_run_time=first)
        self.scheduler.add_job(self.dispatcher.report_unreported, "interval", minutes=1)
        self.scheduler.start()
        channels = [c for c in ("telegram", "whatsapp") if c in pacers]
        log.info("Barrio Conecta is running (%s) as @%s", ", ".join(channels), bot_username)

    async def _warn_if_unanswered(self) -> None:
        async with self.sessions() as session:
            unanswered = await admin.barrios_nobody_answers(session)
        if unanswered:
            # Ids only: a barrio's name says where its people are.
            log.warning(
                "%d barrios need approval and have no coordinator, and no administrator is "
                "configured (ADMIN_TELEGRAM_IDS, ADMIN_WHATSAPP_NUMBERS): they take no join "
                "requests until one of them is set; barrio ids %s",
                len(unanswered),
                ",".join(map(str, unanswered)),
            )

    async def _photo(self, reference: str) -> bytes:
        """An announcement's photo, for a member on the other channel than its author's:
        Twilio holds one sent from WhatsApp, Telegram one sent from Telegram."""
        if files.is_whatsapp_media(reference):
            settings = self.settings
            if not settings.twilio_account_sid:
                raise LookupError("a WhatsApp photo, and WhatsApp is not configured")
            return await whatsapp.fetch_media(
                reference,
                settings.twilio_account_sid,
                self._twilio_token(),
                settings.twilio_api_base_url,
            )
        if self.outbox_bot is None:
            raise LookupError("a Telegram photo, and Telegram is not configured")
        found = await self.outbox_bot.get_file(reference)
        return bytes(await found.download_as_bytearray())

    def _twilio_token(self) -> str:
        token = self.settings.twilio_auth_token
        return token.get_secret_value() if token is not None else ""

    def _whatsapp_sender(self) -> WhatsAppSender | None:
        settings = self.settings
        if not settings.whatsapp_configured:
            return None
        assert settings.twilio_account_sid and settings.twilio_whatsapp_from
        self.twilio = whatsapp.twilio_client(
            settings.twilio_account_sid, self._twilio_token(), settings.twilio_api_base_url
        )
        callback = (
            f"{settings.public_base_url}/whatsapp/status" if settings.public_base_url else None
        )
        return WhatsAppSender(
            self.twilio,
            settings.twilio_whatsapp_from,
            callback,
            sessions=self.sessions,
            clock=self.clock,
            templates=settings.whatsapp_templates,
        )

    async def _forget_inbound(self) -> None:
        await inbound.forget_old(self.sessions, self.clock)

    async def _forget_abandoned(self) -> None:
        await registration.forget_abandoned(self.sessions, self.clock())

    async def _prune_deliveries(self) -> None:
        keep = timedelta(days=self.settings.delivery_retention_days)
        await retention.prune_deliveries(self.sessions, self.clock(), keep)
        await retention.prune_reminders(self.sessions, self.clock(), keep)
        await retention.prune_link_codes(self.sessions, self.clock())
        await retention.prune_early_receipts(self.sessions, self.clock())
        await files.prune_shared_files(self.sessions, self.clock())

    async def _start_web(self, secret: str, telegram_webhook: bool) -> None:
        async def enqueue_update(payload: dict[str, object]) -> None:
            assert self.application is not None
            try:
                update = Update.de_json(payload, self.application.bot)
            except Exception as error:  # PTB raises whatever a wrong shape trips over
                raise MalformedUpdate(f"not a Telegram update ({type(error).__name__})") from None
            if update is None:
                raise MalformedUpdate("empty update")
            # Stored before the 200 goes back; a redelivery is stored once and run once.
            for new in await inbound.store(self.sessions, [update], self.clock()):
                await self.application.update_queue.put(new)

        webhook = enqueue_update if telegram_webhook else None
        app = create_web_app(
            lambda: db.ping(self.engine),
            webhook,
            secret,
            self.whatsapp,
            files.file_route(self.sessions, self.clock) if self.whatsapp is not None else None,
        )
        config = uvicorn.Config(
            app,
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning",
            lifespan="off",
            # Named, not left to "auto": without it uvicorn quietly falls back to h11, which
            # parses every webhook in Python (pinned in pyproject.toml).
            http="httptools",
            # A stuck client must not hold up the orderly stop for ever.
            timeout_graceful_shutdown=5,
        )
        self._web = _WebServer(config)
        task = asyncio.create_task(self._web.serve(), name="web")
        self._tasks.append(task)
        while not self._web.started:
            if task.done():
                task.result()  # raises why the server could not start (port taken…)
                raise RuntimeError("web server stopped")
            await asyncio.sleep(0.01)
        self.web_port = self._web.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        application = self.application
        if self.poller is not None:
            self.poller.stop()
        if self._poller_task is not None:
            # Cancelling a long poll is safe: what was not stored was not acknowledged either.
            self._poller_task.cancel()
            await _finished(self._poller_task)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.reminders is not None:
            self.reminders.stop()
        if self._web is not None:
            self._web.should_exit = True
        for task in self._tasks:
            await _finished(task)
        if self._web is not None:
            # A server that failed (rather than stopped) still holds its listening socket.
            for server in getattr(self._web, "servers", []):
                server.close()
        if application is not None:
            if application.running:
                await application.stop()
            await application.shutdown()
        if self.twilio is not None:
            http_client = self.twilio.http_client
            if isinstance(http_client, AsyncTwilioHttpClient):
                await http_client.close()
        if self.outbox_bot is not None:
            await self.outbox_bot.shutdown()
        if self.dialogue is not None:
            await self.dialogue.settle(SETTLE_MARKS_S)
        await self.engine.dispose()

    async def run_forever(self) -> None:
        """Start, run until SIGTERM or SIGINT, then stop in order (in-flight sends finish).

        Raises `BackgroundTaskEnded` when the web server, the poller or the outbox ends on
        its own: a bot without them would look alive and do nothing."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        restore = _on_stop_signals(loop, stopping)
        asked = asyncio.create_task(stopping.wait(), name="stop signal")
        starting = asyncio.create_task(self.start(), name="start")
        ended: asyncio.Task[None] | None = None
        asked_to_stop = False
        try:
            await asyncio.wait([starting, asked], return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # start's own failure, as is
                ended = await self._first_to_end(asked)
            asked_to_stop = ended is None
        finally:
            asked.cancel()
            await asyncio.wait([asked])  # gone before the loop closes, without raising
            if not starting.done():
                # Stopped while still starting (a slow migration, say): no use finishing.
                starting.cancel()
                await _finished(starting)
            try:
                await self.stop()
            finally:
                restore()
        if asked_to_stop:
            log.info("Barrio Conecta stopped")
        if ended is not None:
            raise BackgroundTaskEnded(_ended_reason(ended))

    async def _first_to_end(self, asked: asyncio.Task[bool]) -> asyncio.Task[None] | None:
        """Wait for the stop signal or for a background task to end; returns the latter."""
        watched = [t for t in (*self._tasks, self._poller_task) if t is not None]
        done, _ = await asyncio.wait([asked, *watched], return_when=asyncio.FIRST_COMPLETED)
        ended = next((task for task in watched if task in done), None)
        if ended is not None:
            # Reported once, by the caller; stop() must not log it again as a failure.
            self._tasks = [t for t in self._tasks if t is not ended]
            if self._poller_task is ended:
                self._poller_task = None
        return ended


class BackgroundTaskEnded(RuntimeError):
    """A task the bot cannot work without (web server, poller, outbox) ended by itself."""


class _WebServer(uvicorn.Server):
    """uvicorn without its own signal handling. Its `capture_signals` takes SIGINT/SIGTERM,
    stops only the web server and re-raises the signal afterwards: the process then dies
    without the orderly stop, or (as PID 1, where the re-raised signal is ignored) goes on
    without its web server. `Runtime.run_forever` handles the signals for the whole bot."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _on_stop_signals(
    loop: asyncio.AbstractEventLoop, stopping: asyncio.Event
) -> Callable[[], None]:
    """Let SIGTERM and SIGINT set `stopping`; returns what puts the previous handlers back."""

    def asked(sig: signal.Signals) -> None:
        if stopping.is_set():
            log.warning("%s received; already stopping", sig.name)
        else:
            log.info("%s received; stopping", sig.name)
        stopping.set()

    installed: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, asked, sig)
            except (NotImplementedError, RuntimeError):  # not a Unix loop: leave signals alone
                continue
            installed[sig] = previous

    def restore() -> None:
        for sig, previous in installed.items():
            loop.remove_signal_handler(sig)
            if previous is not None:
                signal.signal(sig, previous)

    return restore


# What `barrio run` says when one of these ends: to whoever runs the deployment, in Spanish.
_TASK_NAMES = {
    "web": "el servidor web",
    "poller": "la lectura de mensajes de Telegram",
    "outbox": "el envío de mensajes",
    "reminders": "los recordatorios",
}


def _ended_reason(task: asyncio.Task[None]) -> str:
    name = _TASK_NAMES.get(task.get_name(), f"la tarea {task.get_name()}")
    if task.cancelled():
        return f"{name} se canceló; el bot se detuvo también"
    error = task.exception()
    if error is not None:
        return f"{name} falló ({type(error).__name__}: {error}); el bot se detuvo también"
    return f"{name} se detuvo por su cuenta; el bot se detuvo también"


async def _finished(task: asyncio.Task[None]) -> None:
    """Wait for a background task at shutdown; its failure is logged, not allowed to stop
    the rest of the shutdown."""
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("%s had failed", task.get_name())
