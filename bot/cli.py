"""`barrio`: the bot, the offline demo, migrations and the admin commands, as in DESIGN.md.

Every command reads the same settings as `barrio run`. Bad arguments or settings end with one
line on standard error and exit status 2, never a traceback. The person who runs a deployment
reads this in Chile: help, errors and output are in Spanish, like the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import errno
import functools
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import qrcode
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from qrcode.image.pure import PyPNGImage
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot import logs, whatsapp
from bot.poster import Invite, write_poster
from bot.settings import Settings, SettingsError, load_settings
from handlers import admin, reminders, texts
from models import Barrio, db, queries
from models.entities import utcnow

EXIT_USAGE = 2
DATABASE_HINT = "revisa DATABASE_URL"
UPGRADE = "`barrio db upgrade`"
T = TypeVar("T")
Command = Callable[[argparse.Namespace, Settings], Awaitable[None]]


class UsageError(Exception):
    pass


class TelegramUnreachable(Exception):
    """Telegram refused the token or did not answer at start-up."""


class BotStopped(Exception):
    """`barrio run` stopped because a part it cannot work without stopped."""


class _Formatter(argparse.HelpFormatter):
    def add_usage(
        self,
        usage: str | None,
        actions: Any,
        groups: Any,
        prefix: str | None = None,
    ) -> None:
        super().add_usage(usage, actions, groups, "uso: " if prefix is None else prefix)


# argparse's own messages (as Python 3.11 words them) and what the operator reads instead; a
# message not matched here passes through as argparse said it.
_ARGUMENT = re.compile(r"argument (?P<name>.+?): (?P<problem>.+)", re.DOTALL)
_REQUIRED = re.compile(r"the following arguments are required: (?P<names>.+)")
_ONE_OF = re.compile(r"one of the arguments (?P<names>.+) is required")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (?P<words>.+)")
_INVALID_CHOICE = re.compile(r"invalid choice: '?(?P<value>.*?)'? \(choose from")
_INVALID_VALUE = re.compile(r"invalid int value: '?(?P<value>.*?)'?$")  # the only type= used
_NOT_WITH = re.compile(r"not allowed with argument (?P<other>.+)")
_EXPLICIT = re.compile(r"ignored explicit argument")
_EXPECTED = re.compile(r"expected (one|at least one|at most one) argument")


def _words(names: Sequence[str], last: str) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {last} " + names[-1]


class _Parser(argparse.ArgumentParser):
    """Spanish help, and argparse's errors said in Spanish on one line."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs, add_help=False, allow_abbrev=False, formatter_class=_Formatter)
        # argparse names its two default sections itself; these are their Spanish titles.
        self._positionals.title = "argumentos"
        self._optionals.title = "opciones"
        self.add_argument("-h", "--help", action="help", help="muestra esta ayuda y termina")
        self.subcommands: list[str] = []
        self.subcommand_metavar = ""

    def commands(self, metavar: str, title: str) -> argparse._SubParsersAction[_Parser]:
        self.subcommand_metavar = metavar
        return self.add_subparsers(
            title=title, metavar=metavar, dest=metavar.lower(), required=True, parser_class=_Parser
        )

    def command(
        self,
        subparsers: argparse._SubParsersAction[_Parser],
        name: str,
        help: str,
        run: Command | None = None,
    ) -> _Parser:
        self.subcommands.append(name)
        parser = subparsers.add_parser(name, help=help, description=help[:1].upper() + help[1:])
        if run is not None:
            parser.set_defaults(run=run, prog=parser.prog)
        return parser

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"barrio: {self.spanish(message)} (ayuda: {self.prog} --help)\n")

    def spanish(self, message: str) -> str:
        name, problem = "", message
        if argument := _ARGUMENT.fullmatch(message):
            name, problem = argument["name"], argument["problem"]
        choices = " | ".join(self.subcommands)
        kind = "comando" if self.prog == "barrio" else "subcomando"
        words = self.prog.removeprefix("barrio").strip()
        options = f"{words} {choices}".strip()
        if match := _REQUIRED.fullmatch(problem):
            names = match["names"].split(", ")
            if self.subcommand_metavar in names:
                return f"falta el {kind}: {options}"
            return f"falta{'n' if len(names) > 1 else ''} {_words(names, 'y')}"
        if match := _ONE_OF.fullmatch(problem):
            return f"falta {_words(match['names'].split(), 'o')}"
        if match := _UNRECOGNIZED.fullmatch(problem):
            return f"no entiendo {match['words']}"
        if match := _INVALID_CHOICE.match(problem):
            if name == self.subcommand_metavar:
                return f"no existe el {kind} {match['value']}; elige: {options}"
            return f"{name} no acepta {match['value']}"
        if match := _INVALID_VALUE.match(problem):
            return f"{name} lleva un número, no {match['value']}"
        if match := _NOT_WITH.fullmatch(problem):
            return f"usa {match['other']} o {name}, no los dos"
        if _EXPLICIT.match(problem):
            return f"{name} no lleva valor"
        if _EXPECTED.fullmatch(problem):
            return f"a {name} le falta su valor"
        return message


def _parser() -> _Parser:
    parser = _Parser(
        prog="barrio",
        description=(
            "Barrio Conecta, el bot de los barrios comerciales. Cada comando lee la misma "
            "configuración que `barrio run` (variables de entorno o el archivo .env) y funciona "
            "con el bot andando."
        ),
    )
    commands = parser.commands("COMANDO", "comandos")
    run = parser.command(commands, "run", "el bot: Telegram, WhatsApp, la web y los envíos", _run)
    run.add_argument(
        "--demo-without-token",
        action="store_true",
        help="sin TELEGRAM_BOT_TOKEN, parte la demo sin conexión en su lugar",
    )
    demo = parser.command(
        commands, "demo", "todo el sistema sin conexión, conversando en la terminal", _demo
    )
    demo.add_argument("--fresh", action="store_true", help="parte de datos de demo nuevos")
    dbcmd = parser.command(commands, "db", "la base de datos")
    dbcmd.command(
        dbcmd.commands("SUBCOMANDO", "subcomandos"),
        "upgrade",
        "crea la base de datos o la pone al día (barrio run también lo hace)",
        _upgrade,
    )

    barrios = parser.command(commands, "barrios", "los barrios comerciales")
    barrio_commands = barrios.commands("SUBCOMANDO", "subcomandos")
    barrios.command(
        barrio_commands, "list", "lista los barrios, con su zona horaria y sus recordatorios",
        _list_barrios,
    )  # fmt: skip
    create = barrios.command(barrio_commands, "create", "crea un barrio", _create_barrio)
    create.add_argument(
        "--name", required=True, metavar="NOMBRE", help="por ejemplo Barrio Estación"
    )
    create.add_argument("--comuna", required=True, metavar="COMUNA", help="por ejemplo Rancagua")
    create.add_argument("--region", required=True, metavar="REGIÓN", help="por ejemplo O'Higgins")
    create.add_argument(
        "--open", action="store_true", help="se entra sin la aprobación de la coordinación"
    )
    create.add_argument(
        "--force",
        action="store_true",
        help="créalo aunque ya haya uno con el mismo nombre en la misma comuna",
    )
    configure = barrios.command(
        barrio_commands,
        "set",
        "la zona horaria de un barrio y cuándo se recuerdan sus reuniones",
        _configure_barrio,
    )
    configure.add_argument("slug", metavar="SLUG", help="el barrio (ver barrio barrios list)")
    configure.add_argument(
        "--timezone", metavar="ZONA", help="por ejemplo America/Punta_Arenas (Magallanes)"
    )
    configure.add_argument(
        "--reminders",
        metavar="HORAS",
        help="horas antes de cada reunión, por ejemplo 48,3 (o ninguno)",
    )

    invite = parser.command(
        commands, "invite", "el enlace de invitación de un barrio, su código QR y su afiche",
        _invite,
    )  # fmt: skip
    invite.add_argument("slug", metavar="SLUG", help="el barrio (ver barrio barrios list)")
    invite.add_argument(
        "--qr",
        metavar="ARCHIVO.png",
        help="guarda también el código QR del enlace (el de WhatsApp, con -whatsapp en el nombre)",
    )
    invite.add_argument("--poster", metavar="ARCHIVO.pdf", help="guarda un afiche A4 para imprimir")

    coordinators = parser.command(commands, "coordinators", "la coordinación de los barrios")
    add = coordinators.command(
        coordinators.commands("SUBCOMANDO", "subcomandos"),
        "add",
        "nombra coordinador(a) a alguien ya registrado en el bot",
        _add_coordinator,
    )
    add.add_argument("--barrio", required=True, metavar="SLUG", help="el barrio")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--telegram-id", type=int, metavar="ID", help="su id de Telegram")
    who.add_argument("--phone", metavar="+569…", help="su número de WhatsApp")

    export = parser.command(commands, "export", "planillas CSV por la salida estándar")
    export_commands = export.commands("SUBCOMANDO", "subcomandos")
    members = export.command(
        export_commands, "members", "los socios: activos y pendientes", _export_members
    )
    members.add_argument("--barrio", required=True, metavar="SLUG", help="el barrio")
    members.add_argument(
        "--all",
        dest="everyone",
        action="store_true",
        help="también quienes se retiraron o fueron rechazados",
    )
    attendance = export.command(
        export_commands, "attendance", "la asistencia a las reuniones", _export_attendance
    )
    attendance.add_argument("--barrio", required=True, metavar="SLUG", help="el barrio")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Said here rather than by argparse, so the help pointed to is the command's own.
        parser.exit(
            EXIT_USAGE, f"barrio: no entiendo {' '.join(extra)} (ayuda: {args.prog} --help)\n"
        )
    # The running bot logs what it does; admin commands and the demo keep the terminal clean.
    level = logging.INFO if args.run is _run else logging.WARNING
    try:
        settings = load_settings()
        logs.configure(level, _secrets(settings))
        asyncio.run(args.run(args, settings))
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
        sys.stderr.write(f"barrio: se acabó la espera: {error or 'nadie respondió a tiempo'}\n")
        sys.exit(1)
    except (OSError, SQLAlchemyError) as error:
        # The database (or the Bot API) does not answer: say so in one line, not a traceback.
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        sys.stderr.write(
            f"barrio: no pude conectarme a la base de datos ({DATABASE_HINT}): {reason}\n"
        )
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


async def _run(args: argparse.Namespace, settings: Settings) -> None:
    if settings.token is None and not settings.whatsapp_configured:
        if args.demo_without_token:
            from bot.demo import run_demo

            print("TELEGRAM_BOT_TOKEN no está configurado: parte la demo sin conexión.")
            logging.getLogger().setLevel(logging.WARNING)  # the demo's terminal is a chat
            await run_demo(settings, fresh=False)
            return
        raise UsageError(
            "falta TELEGRAM_BOT_TOKEN (pídeselo a @BotFather) o, para WhatsApp, "
            "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN y TWILIO_WHATSAPP_FROM"
        )
    from telegram.error import TelegramError

    from bot.runtime import BackgroundTaskEnded, Runtime

    try:
        await Runtime(settings).run_forever()
    except TelegramError as error:
        raise TelegramUnreachable(
            "Telegram rechazó el token o no respondió (revisa TELEGRAM_BOT_TOKEN y "
            f"TELEGRAM_API_BASE_URL): {_redacted(str(error), settings.token)}"
        ) from None
    except BackgroundTaskEnded as error:
        raise BotStopped(_redacted(str(error), settings.token)) from None


async def _demo(args: argparse.Namespace, settings: Settings) -> None:
    from bot.demo import run_demo

    await run_demo(settings, fresh=args.fresh)


def _redacted(text: str, token: str | None) -> str:
    """`text` without the bot token (PTB's InvalidToken quotes it whole), on one line."""
    return " ".join(logs.redact(text, logs.token_parts(token)).split())


async def _upgrade(_args: argparse.Namespace, settings: Settings) -> None:
    """The one admin command that creates a database (`barrio run` migrates too)."""
    engine = db.create_engine(settings.database_url)
    try:
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    print("la base de datos está al día")


async def _in_database(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`work` in one transaction on the deployment's database, which must exist and be
    migrated: a mistyped DATABASE_URL is refused, not answered from a new empty database."""
    engine = _existing_database(settings.database_url)
    try:
        await _refuse_unmigrated(engine)
        async with db.session_factory(engine, utcnow)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def _existing_database(url: str) -> AsyncEngine:
    parsed = make_url(url)
    # Checked before the engine exists: creating it makes the SQLite file's folders.
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ":memory:"
        if path == ":memory:" or not Path(path).is_file():
            raise UsageError(
                f"no existe la base de datos {path} ({DATABASE_HINT}; solo {UPGRADE} y "
                "`barrio run` crean una)"
            )
    return db.create_engine(url)


async def _refuse_unmigrated(engine: AsyncEngine) -> None:
    def revisions(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as connection:
        current = await connection.run_sync(revisions)
    script = ScriptDirectory.from_config(db.alembic_config())
    if current == set(script.get_heads()):
        return
    url = engine.url
    where = url.database if url.get_backend_name() == "sqlite" else url.render_as_string()
    if not current:
        raise UsageError(
            f"la base de datos {where} no tiene las tablas de Barrio Conecta "
            f"({DATABASE_HINT}; si es la correcta, créalas con {UPGRADE})"
        )
    try:
        for revision in current:
            script.get_revision(revision)
    except CommandError:
        raise UsageError(
            f"la base de datos {where} es de una versión más nueva de Barrio Conecta: "
            "actualiza este programa"
        ) from None
    raise UsageError(f"la base de datos {where} está desactualizada: ponla al día con {UPGRADE}")


async def _create_barrio(args: argparse.Namespace, settings: Settings) -> None:
    async def create(session: AsyncSession) -> Barrio:
        if not args.force:
            await admin.refuse_twin(session, args.name, args.comuna)
        return await admin.create_barrio(
            session, name=args.name, comuna=args.comuna, region=args.region, open_to_all=args.open
        )

    barrio = await _in_database(settings, create)
    print(f"slug: {barrio.slug}")
    print(f"código de invitación: {barrio.invite_code}")
    # The barrio is saved by now: a link that cannot be built yet is a note, not a failure.
    try:
        print(f"telegram: {await telegram_link(settings, barrio.invite_code)}")
    except UsageError as error:
        sys.stderr.write(
            f"barrio: aún no hay enlace de invitación ({error}); después: "
            f"barrio invite {barrio.slug}\n"
        )


async def _list_barrios(_args: argparse.Namespace, settings: Settings) -> None:
    await _in_database(settings, _print_barrios)


async def _print_barrios(session: AsyncSession) -> None:
    coordinators = await queries.coordinator_counts(session)
    for barrio in await queries.all_barrios(session):
        members = await queries.active_member_count(session, barrio.id)
        coordination = _coordination(coordinators.get(barrio.id, 0))
        joining = "con aprobación" if barrio.requires_approval else "abierto"
        zone = barrio.timezone or "BARRIO_TIMEZONE"
        offsets = reminders.reminder_minutes(barrio)
        reminded = ",".join(f"{m / 60:g}h" for m in offsets) or "sin recordatorios"
        print(
            f"{barrio.slug}\t{barrio.name}\t{barrio.comuna}\t{barrio.region}\t"
            f"{barrio.invite_code}\t{joining}\t{texts.people(members)}\t{coordination}\t{zone}\t"
            f"{reminded}"
        )


def _coordination(coordinators: int) -> str:
    """A barrio without coordinators is marked plainly: its requests reach only the
    administrators, if any (ADMIN_TELEGRAM_IDS, ADMIN_WHATSAPP_NUMBERS)."""
    if coordinators == 0:
        return "sin coordinación"
    return "1 coordinador(a)" if coordinators == 1 else f"{coordinators} coordinadores"


async def _configure_barrio(args: argparse.Namespace, settings: Settings) -> None:
    if args.timezone is None and args.reminders is None:
        raise UsageError("di qué cambiar: --timezone ZONA, --reminders HORAS o los dos")
    await _in_database(settings, lambda s: _set_barrio(s, settings, args))


async def _set_barrio(session: AsyncSession, settings: Settings, args: Any) -> None:
    barrio = await admin.require_barrio(session, args.slug)
    now = utcnow()
    if args.timezone is not None:
        await admin.set_timezone(session, barrio, args.timezone, now, settings.zone)
    if args.reminders is not None:
        await admin.set_reminder_hours(session, barrio, args.reminders, now)
    offsets = reminders.reminder_minutes(barrio)
    reminded = (
        "se recuerdan " + ", ".join(f"{m / 60:g} h" for m in offsets) + " antes"
        if offsets
        else "no se recuerdan"
    )
    print(
        f"{barrio.slug}: zona horaria {barrio.timezone or settings.zone}; las reuniones {reminded}"
    )


def _file_name(option: str, name: str | None, ending: str) -> None:
    if name is not None and not name.lower().endswith(ending):
        raise UsageError(f"{option} lleva un nombre de archivo terminado en {ending}")


async def _invite(args: argparse.Namespace, settings: Settings) -> None:
    _file_name("--qr", args.qr, ".png")
    _file_name("--poster", args.poster, ".pdf")
    barrio = await _in_database(settings, lambda s: admin.require_barrio(s, args.slug))
    code = barrio.invite_code
    invites: list[Invite] = []
    if settings.token is not None or settings.telegram_bot_username:
        # Asked of Telegram (getMe) outside the transaction, which it would otherwise hold open.
        username = await bot_username(settings)
        link = f"https://t.me/{username}?start={quote(code)}"
        by_hand = (f"Abre {link}", f"o busca @{username} en Telegram y escríbele: /start {code}")
        invites.append(Invite("Telegram", link, by_hand))
    if settings.twilio_whatsapp_from:
        number = whatsapp.address(settings.twilio_whatsapp_from)
        shown = f"+56 {national}" if (national := admin.chilean_digits(number)) else number
        by_hand = (f"Escribe al {shown}:", whatsapp.JOIN_TEXT.format(code=code))
        invites.append(Invite("WhatsApp", whatsapp_link(settings, code), by_hand))
    if not invites:
        raise UsageError(
            "configura TELEGRAM_BOT_USERNAME o TELEGRAM_BOT_TOKEN (Telegram), o "
            "TWILIO_WHATSAPP_FROM (WhatsApp), para armar los enlaces de invitación"
        )
    for index, invite in enumerate(invites):
        print(invite.link)
        if args.qr:
            suffix = "" if index == 0 else "-" + invite.channel.lower()
            path = args.qr[: -len(".png")] + suffix + ".png"
            _write(path, functools.partial(write_qr, invite.link))
            print(f"código QR guardado en {path}")
    if args.poster:
        place = f"{barrio.comuna}, {barrio.region}"
        _write(
            args.poster,
            lambda pdf: write_poster(
                pdf, barrio=barrio.name, place=place, code=code, invites=invites
            ),
        )
        print(f"afiche guardado en {args.poster}")


# What the OS says of a file it cannot write, in the operator's words.
_WRITE_ERRORS = {
    errno.ENOENT: "no existe la carpeta",
    errno.EACCES: "no tengo permiso",
    errno.EPERM: "no tengo permiso",
    errno.EISDIR: "es una carpeta",
    errno.ENOSPC: "no queda espacio",
    errno.EROFS: "el disco es de solo lectura",
}


def _write(path: str, write: Callable[[str], None]) -> None:
    try:
        write(path)
    except OSError as error:
        reason = _WRITE_ERRORS.get(error.errno or 0, error.strerror or str(error))
        raise UsageError(f"no pude guardar {path}: {reason}") from None


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
        raise UsageError(
            "configura TELEGRAM_BOT_USERNAME o TELEGRAM_BOT_TOKEN para armar los enlaces"
        )
    from telegram import Bot
    from telegram.error import TelegramError

    try:
        async with Bot(settings.token, base_url=f"{settings.telegram_api_base_url}/bot") as bot:
            return bot.username
    except TelegramError as error:
        raise UsageError(
            f"Telegram no respondió getMe: {_redacted(str(error), settings.token)}"
        ) from None


async def _add_coordinator(args: argparse.Namespace, settings: Settings) -> None:
    if args.telegram_id is not None:
        channel, external_id = "telegram", str(args.telegram_id)
    else:
        number = whatsapp.address(args.phone).replace(" ", "")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", number):
            raise UsageError("--phone lleva el número de WhatsApp así: +56912345678")
        channel, external_id = whatsapp.CHANNEL, number

    async def promote(session: AsyncSession) -> str:
        barrio = await admin.require_barrio(session, args.barrio)
        promotion = await admin.make_coordinator(
            session, barrio, channel, external_id, default_zone=settings.zone
        )
        done = f"{promotion.member.name} ahora coordina {barrio.name}"
        # Queued in this transaction: the running bot's outbox sends them.
        if promotion.forwarded == 1:
            done += "; le llega la solicitud que esperaba respuesta"
        elif promotion.forwarded:
            done += f"; le llegan las {promotion.forwarded} solicitudes que esperaban respuesta"
        return done

    print(await _in_database(settings, promote))


async def _export_members(args: argparse.Namespace, settings: Settings) -> None:
    async def rows(session: AsyncSession) -> Sequence[tuple[str, ...]]:
        barrio = await admin.require_barrio(session, args.barrio)
        return await admin.member_rows(session, barrio, settings.zone, everyone=args.everyone)

    _csv(admin.MEMBER_COLUMNS, await _in_database(settings, rows))


async def _export_attendance(args: argparse.Namespace, settings: Settings) -> None:
    async def rows(session: AsyncSession) -> Sequence[tuple[str, ...]]:
        barrio = await admin.require_barrio(session, args.barrio)
        return await admin.attendance_rows(session, barrio, settings.zone)

    _csv(admin.ATTENDANCE_COLUMNS, await _in_database(settings, rows))


def _csv(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(columns)
    writer.writerows(rows)
