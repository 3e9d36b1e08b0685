"""`barrio`: the bot, the offline demo, migrations and the admin commands, as in DESIGN.md.

Every command reads the same settings as `barrio run`. Bad arguments or settings end with one
line on standard error and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import qrcode
from qrcode.image.pure import PyPNGImage
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import logs, whatsapp
from bot.settings import Settings, SettingsError, load_settings
from handlers import admin, reminders
from models import db, queries
from models.entities import utcnow

EXIT_USAGE = 2
DATABASE_HINT = "check DATABASE_URL"
T = TypeVar("T")


class UsageError(Exception):
    pass


class TelegramUnreachable(Exception):
    """Telegram refused the token or did not answer at start-up."""


class BotStopped(Exception):
    """`barrio run` stopped because a part it cannot work without stopped."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"barrio: {message} (see `barrio --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="barrio", description="Barrio Conecta")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run the bot (Telegram, web app, outbox)")
    run.add_argument(
        "--demo-without-token",
        action="store_true",
        help="run the offline demo instead when no TELEGRAM_BOT_TOKEN is configured",
    )
    demo = commands.add_parser("demo", help="the whole system offline, chatting in the terminal")
    demo.add_argument("--fresh", action="store_true", help="start from new demo data")
    dbcmd = commands.add_parser("db", help="database")
    dbcmd.add_subparsers(dest="db_command", required=True, parser_class=_Parser).add_parser(
        "upgrade", help="apply migrations"
    )
    barrios = commands.add_parser("barrios", help="barrios comerciales")
    barrio_commands = barrios.add_subparsers(
        dest="barrios_command", required=True, parser_class=_Parser
    )
    create = barrio_commands.add_parser("create", help="create a barrio")
    create.add_argument("--name", required=True)
    create.add_argument("--comuna", required=True)
    create.add_argument("--region", required=True)
    create.add_argument("--open", action="store_true", help="join without approval")
    barrio_commands.add_parser("list", help="list barrios")
    configure = barrio_commands.add_parser(
        "set", help="a barrio's time zone and when its meetings are reminded"
    )
    configure.add_argument("slug")
    configure.add_argument("--timezone", metavar="ZONE", help="e.g. America/Punta_Arenas")
    configure.add_argument(
        "--reminders", metavar="HOURS", help="hours before each meeting, e.g. 48,3 (or none)"
    )
    invite = commands.add_parser("invite", help="print a barrio's invite link")
    invite.add_argument("slug")
    invite.add_argument("--qr", metavar="FILE.png", help="also write the link as a QR code")
    coordinators = commands.add_parser("coordinators", help="coordinators")
    add = coordinators.add_subparsers(
        dest="coordinators_command", required=True, parser_class=_Parser
    ).add_parser("add", help="make a registered member a coordinator")
    add.add_argument("--barrio", required=True, metavar="SLUG")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--telegram-id", type=int)
    who.add_argument("--phone")
    export = commands.add_parser("export", help="CSV to standard output")
    export.add_argument("what", choices=["members", "attendance"])
    export.add_argument("--barrio", required=True, metavar="SLUG")
    export.add_argument(
        "--all",
        dest="everyone",
        action="store_true",
        help="members: also those who left or were rejected (by default active and pending)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    # The running bot logs what it does; admin commands and the demo keep the terminal clean.
    level = logging.INFO if args.command == "run" else logging.WARNING
    try:
        settings = load_settings()
        logs.configure(level, _secrets(settings))
        asyncio.run(_dispatch(args, settings))
    except (SettingsError, UsageError, admin.AdminError) as error:
        sys.stderr.write(f"barrio: {error}\n")
        sys.exit(EXIT_USAGE)
    except (TelegramUnreachable, BotStopped) as error:
        sys.stderr.write(f"barrio: {error}\n")
        sys.exit(1)
    except BrokenPipeError:
        # `barrio export … | head`: the reader has what it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except TimeoutError as error:
        # An OSError too, but not the database's: say what timed out.
        sys.stderr.write(f"barrio: timed out: {error or 'no answer in time'}\n")
        sys.exit(1)
    except (OSError, SQLAlchemyError) as error:
        # The database (or the Bot API) does not answer: say so in one line, not a traceback.
        reason = getattr(error, "orig", None) or error
        sys.stderr.write(f"barrio: cannot reach the database ({DATABASE_HINT}): {reason}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        pass


def _secrets(settings: Settings) -> list[str]:
    twilio = settings.twilio_auth_token
    return [
        *logs.token_parts(settings.token),
        settings.telegram_webhook_secret.get_secret_value(),
        twilio.get_secret_value() if twilio else "",
    ]


async def _dispatch(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "run":
        await _run(settings, demo_without_token=args.demo_without_token)
    elif args.command == "demo":
        from bot.demo import run_demo

        await run_demo(settings, fresh=args.fresh)
    elif args.command == "db":
        await _in_database(settings, _report_up_to_date)
    elif args.command == "barrios" and args.barrios_command == "create":
        await _create_barrio(settings, args)
    elif args.command == "barrios" and args.barrios_command == "set":
        await _in_database(settings, lambda s: _configure_barrio(s, settings, args))
    elif args.command == "barrios":
        await _in_database(settings, _list_barrios)
    elif args.command == "invite":
        await _invite(settings, args.slug, args.qr)
    elif args.command == "coordinators":
        await _in_database(settings, lambda s: _add_coordinator(s, args))
    elif args.command == "export":
        await _in_database(
            settings, lambda s: _export(s, settings, args.what, args.barrio, args.everyone)
        )


async def _run(settings: Settings, *, demo_without_token: bool) -> None:
    if settings.token is None and not settings.whatsapp_configured:
        if demo_without_token:
            from bot.demo import run_demo

            print("TELEGRAM_BOT_TOKEN no está configurado: parte la demo sin conexión.")
            logging.getLogger().setLevel(logging.WARNING)  # the demo's terminal is a chat
            await run_demo(settings, fresh=False)
            return
        raise UsageError(
            "TELEGRAM_BOT_TOKEN is not set (get one from @BotFather), nor WhatsApp's "
            "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM"
        )
    from telegram.error import TelegramError

    from bot.runtime import BackgroundTaskEnded, Runtime

    try:
        await Runtime(settings).run_forever()
    except TelegramError as error:
        raise TelegramUnreachable(
            "Telegram refused or did not answer (check TELEGRAM_BOT_TOKEN and "
            f"TELEGRAM_API_BASE_URL): {_redacted(str(error), settings.token)}"
        ) from None
    except BackgroundTaskEnded as error:
        raise BotStopped(_redacted(str(error), settings.token)) from None


def _redacted(text: str, token: str | None) -> str:
    """`text` without the bot token (PTB's InvalidToken quotes it whole), on one line."""
    return " ".join(logs.redact(text, logs.token_parts(token)).split())


async def _in_database(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run `work` in one transaction: admin commands work beside a live bot."""
    engine = db.create_engine(settings.database_url)
    try:
        await db.upgrade(engine)
        async with db.session_factory(engine, utcnow)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def _report_up_to_date(_session: AsyncSession) -> None:
    print("database is up to date")


async def _create_barrio(settings: Settings, args: argparse.Namespace) -> None:
    barrio = await _in_database(
        settings,
        lambda s: admin.create_barrio(
            s, name=args.name, comuna=args.comuna, region=args.region, open_to_all=args.open
        ),
    )
    print(f"slug: {barrio.slug}")
    print(f"invite code: {barrio.invite_code}")
    # The barrio is saved by now: a link that cannot be built yet is a note, not a failure.
    try:
        print(f"telegram: {await telegram_link(settings, barrio.invite_code)}")
    except UsageError as error:
        sys.stderr.write(
            f"barrio: no invite link yet ({error}); later: barrio invite {barrio.slug}\n"
        )


async def _list_barrios(session: AsyncSession) -> None:
    for barrio in await queries.all_barrios(session):
        members = await queries.active_member_count(session, barrio.id)
        joining = "approval" if barrio.requires_approval else "open"
        zone = barrio.timezone or "BARRIO_TIMEZONE"
        offsets = reminders.reminder_minutes(barrio)
        reminded = ",".join(f"{m / 60:g}h" for m in offsets) or "no reminders"
        print(
            f"{barrio.slug}\t{barrio.name}\t{barrio.comuna}\t{barrio.region}\t"
            f"{barrio.invite_code}\t{joining}\t{members} members\t{zone}\t{reminded}"
        )


async def _configure_barrio(session: AsyncSession, settings: Settings, args: Any) -> None:
    if args.timezone is None and args.reminders is None:
        raise UsageError("say what to set: --timezone ZONE and/or --reminders HOURS")
    barrio = await admin.require_barrio(session, args.slug)
    now = utcnow()
    if args.timezone is not None:
        await admin.set_timezone(session, barrio, args.timezone, now, settings.zone)
    if args.reminders is not None:
        await admin.set_reminder_hours(session, barrio, args.reminders, now)
    offsets = reminders.reminder_minutes(barrio)
    print(
        f"{barrio.slug}: time zone {barrio.timezone or settings.zone}; meetings reminded "
        + (", ".join(f"{m / 60:g} h" for m in offsets) + " before" if offsets else "never")
    )


async def _invite(settings: Settings, slug: str, qr: str | None) -> None:
    barrio = await _in_database(settings, lambda s: admin.require_barrio(s, slug))
    if qr and not qr.lower().endswith(".png"):
        raise UsageError("--qr needs a file name ending in .png")
    links: list[tuple[str, str]] = []
    if settings.token is not None or settings.telegram_bot_username:
        # Asked of Telegram (getMe) outside the transaction, which it would otherwise hold open.
        links.append(("", await telegram_link(settings, barrio.invite_code)))
    if settings.twilio_whatsapp_from:
        links.append(("-whatsapp" if links else "", whatsapp_link(settings, barrio.invite_code)))
    if not links:
        raise UsageError(
            "set TELEGRAM_BOT_USERNAME or TELEGRAM_BOT_TOKEN (Telegram), or TWILIO_WHATSAPP_FROM "
            "(WhatsApp), to build invite links"
        )
    for suffix, link in links:
        print(link)
        if qr:
            path = qr[: -len(".png")] + suffix + ".png"
            try:
                write_qr(link, path)
            except OSError as error:
                raise UsageError(f"cannot write {path}: {error.strerror}") from None
            print(f"QR code written to {path}")


def whatsapp_link(settings: Settings, invite_code: str) -> str:
    """wa.me with the join text filled in: sending it joins the barrio of the code."""
    number = "".join(
        c for c in whatsapp.address(settings.twilio_whatsapp_from or "") if c.isdigit()
    )
    return f"https://wa.me/{number}?text={quote(whatsapp.JOIN_TEXT.format(code=invite_code))}"


def write_qr(link: str, path: str) -> None:
    with open(path, "wb") as png:
        qrcode.make(link, image_factory=PyPNGImage).save(png)


async def telegram_link(settings: Settings, invite_code: str) -> str:
    return f"https://t.me/{await bot_username(settings)}?start={quote(invite_code)}"


async def bot_username(settings: Settings) -> str:
    """From TELEGRAM_BOT_USERNAME, else asked of Telegram with the token."""
    if settings.telegram_bot_username:
        return settings.telegram_bot_username.lstrip("@")
    if settings.token is None:
        raise UsageError("set TELEGRAM_BOT_USERNAME or TELEGRAM_BOT_TOKEN to build invite links")
    from telegram import Bot
    from telegram.error import TelegramError

    try:
        async with Bot(settings.token, base_url=f"{settings.telegram_api_base_url}/bot") as bot:
            return bot.username
    except TelegramError as error:
        raise UsageError(f"Telegram did not answer getMe: {error}") from None


async def _add_coordinator(session: AsyncSession, args: argparse.Namespace) -> None:
    barrio = await admin.require_barrio(session, args.barrio)
    if args.telegram_id is not None:
        channel, external_id = "telegram", str(args.telegram_id)
    else:
        number = whatsapp.address(args.phone).replace(" ", "")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", number):
            raise UsageError("--phone takes the WhatsApp number as +56912345678")
        channel, external_id = whatsapp.CHANNEL, number
    member = await admin.make_coordinator(session, barrio, channel, external_id)
    print(f"{member.name} now coordinates {barrio.name}")


async def _export(
    session: AsyncSession, settings: Settings, what: str, slug: str, everyone: bool
) -> None:
    if everyone and what != "members":
        raise UsageError("--all applies to `export members` only")
    barrio = await admin.require_barrio(session, slug)
    writer = csv.writer(sys.stdout)
    if what == "members":
        writer.writerow(admin.MEMBER_COLUMNS)
        writer.writerows(await admin.member_rows(session, barrio, everyone=everyone))
    else:
        writer.writerow(admin.ATTENDANCE_COLUMNS)
        writer.writerows(await admin.attendance_rows(session, barrio, settings.zone))
