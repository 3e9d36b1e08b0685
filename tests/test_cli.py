"""The admin command line, as DESIGN.md spells it."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main


def barrio(capsys, *args: str) -> str:
    capsys.readouterr()
    main(list(args))
    return capsys.readouterr().out


def test_create_list_invite_and_qr(cli_env, capsys):
    out = barrio(
        capsys,
        "barrios",
        "create",
        "--name",
        "Barrio Estación",
        "--comuna",
        "Rancagua",
        "--region",
        "O'Higgins",
    )
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["slug"] == "barrio-estacion-rancagua"
    code = lines["código de invitación"]
    assert len(code) == 8 and lines["telegram"] == f"https://t.me/BarrioTestBot?start={code}"
    listing = barrio(capsys, "barrios", "list")
    assert "barrio-estacion-rancagua" in listing and "con aprobación" in listing

    qr = cli_env / "afiche.png"
    out = barrio(capsys, "invite", "barrio-estacion-rancagua", "--qr", str(qr))
    assert out.splitlines()[0] == f"https://t.me/BarrioTestBot?start={code}"
    assert qr.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = barrio(
        capsys,
        "barrios",
        "create",
        "--name",
        "Barrio Estación",
        "--comuna",
        "Rancagua",
        "--region",
        "O'Higgins",
        "--open",
        "--force",
    )
    assert "slug: barrio-estacion-rancagua-2" in again


def test_bad_arguments_exit_2_with_one_line(cli_env, capsys):
    for args in (
        ["invite", "no-such-barrio"],
        ["barrios", "create", "--name", "", "--comuna", "X", "--region", "Y"],
        ["coordinators", "add", "--barrio", "nada", "--telegram-id", "1"],
        ["export", "members"],
        ["frobnicate"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("barrio: "), err


def test_malformed_setting_names_the_variable(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("PORT", "many")
    with pytest.raises(SystemExit) as exit_info:
        main(["barrios", "list"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "barrio: PORT debe ser un número entero (llegó «many»)\n"


# One of each kind of refusal: pydantic's own (said in Spanish by type), ours, and the one
# that needs two settings together.
REFUSED_SETTINGS = [
    ({"ALERTS_PER_HOUR": "tres"}, "ALERTS_PER_HOUR debe ser un número entero (llegó «tres»)"),
    ({"PORT": ""}, "PORT debe ser un número entero (está vacía)"),
    (
        {"TELEGRAM_RATE_PER_S": "2,5"},
        "TELEGRAM_RATE_PER_S debe ser un número, con punto decimal como 0.5 (llegó «2,5»)",
    ),
    ({"WHATSAPP_RATE_PER_S": "-1"}, "WHATSAPP_RATE_PER_S debe ser mayor que 0 (llegó «-1»)"),
    ({"DELIVERY_RETENTION_DAYS": "0"}, "DELIVERY_RETENTION_DAYS debe ser 1 o más (llegó «0»)"),
    ({"PORT": "65536"}, "PORT debe ser 65535 o menos (llegó «65536»)"),
    ({"TELEGRAM_MODE": "push"}, "TELEGRAM_MODE debe ser polling o webhook (llegó «push»)"),
    (
        {"DATABASE_URL": "mysql://barrio:clave@localhost/barrio"},
        "DATABASE_URL debe ser sqlite+aiosqlite:///ARCHIVO o postgresql+asyncpg://SERVIDOR/BASE "
        "(llegó «mysql://…»)",
    ),
    (
        {"BARRIO_TIMEZONE": "Santiago"},
        "BARRIO_TIMEZONE debe ser una zona horaria como America/Santiago o America/Punta_Arenas "
        "(llegó «Santiago»)",
    ),
    (
        {"PUBLIC_BASE_URL": "bot.example.cl"},
        "PUBLIC_BASE_URL debe empezar con https:// o http:// (llegó «bot.example.cl»)",
    ),
    (
        {"TWILIO_TEMPLATE_MEETING": "reunion"},
        "TWILIO_TEMPLATE_MEETING debe ser un Content SID de Twilio: HX y 32 dígitos "
        "hexadecimales (llegó «reunion»)",
    ),
    (
        {"ADMIN_TELEGRAM_IDS": "@carmen"},
        "ADMIN_TELEGRAM_IDS debe llevar ids de Telegram separados por comas, como "
        "123456789,987654321 («@carmen» no es uno)",
    ),
    (
        {"ADMIN_WHATSAPP_NUMBERS": "+56911112222,56 9 1234 5678"},
        "ADMIN_WHATSAPP_NUMBERS debe llevar números de WhatsApp separados por comas, como "
        "+56912345678,+56987654321 («56912345678» no es uno)",
    ),
    (
        {"TELEGRAM_WEBHOOK_SECRET": "mi secreto"},
        "TELEGRAM_WEBHOOK_SECRET debe tener de 1 a 256 caracteres entre A-Z, a-z, 0-9, _ y - "
        "(sin espacios ni tildes)",
    ),
    (
        {"TELEGRAM_MODE": "webhook", "PUBLIC_BASE_URL": ""},
        "TELEGRAM_MODE=webhook necesita PUBLIC_BASE_URL, la dirección pública del bot "
        "(por ejemplo https://bot.ejemplo.cl)",
    ),
]


@pytest.mark.parametrize(
    ("environment", "said"),
    REFUSED_SETTINGS,
    ids=[",".join(f"{k}={v}" for k, v in env.items()) for env, _ in REFUSED_SETTINGS],
)
def test_refused_settings_are_said_in_spanish_on_one_line(
    cli_env, capsys, monkeypatch, environment, said
):
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    error = _fails(capsys, "barrios", "list")
    assert error == said
    for english in ("Input should", "Value error", "Field required", "needs", "must", "use "):
        assert english not in error
    for secret in ("clave", "mi secreto"):
        assert secret not in error


def test_run_without_token_refuses_clearly(cli_env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])
    assert exit_info.value.code == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_run_says_in_one_line_when_telegram_does_not_answer(cli_env, capsys, monkeypatch):
    from tests.support import free_port

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:TEST-TOKEN")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("barrio: Telegram rechazó el token o no respondió")
    assert error.count("\n") == 1 and "Traceback" not in error


def test_console_script_is_installed_and_fails_cleanly(cli_env):
    script = Path(sys.executable).parent / "barrio"
    result = subprocess.run(
        [str(script), "invite", "nope"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nope" in result.stderr
    assert "Traceback" not in result.stderr


async def test_coordinator_and_export_after_real_registration(
    runtime, phone, monkeypatch, tmp_path, settings
):
    """The admin commands work on the live bot's database while it runs."""
    from tests.support import make_barrio, register

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    barrio_row = await make_barrio(runtime, "Barrio Export", open_to_all=True)
    ana = phone(7301, "Ana")
    await register(ana, barrio_row, business='Almacén, "Ana"')
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TELEGRAM_BOT_USERNAME": "BarrioTestBot",
    }
    script = str(Path(sys.executable).parent / "barrio")
    added = subprocess.run(
        [script, "coordinators", "add", "--barrio", barrio_row.slug, "--telegram-id", "7301"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "Ana ahora coordina Barrio Export" in added.stdout
    assert "/miembros" in "".join(m["text"] for m in await ana.say("/ayuda"))
    exported = subprocess.run(
        [script, "export", "members", "--barrio", barrio_row.slug],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert rows == [
        {
            "nombre": "Ana",
            "negocio": 'Almacén, "Ana"',
            "rubro": "Almacén y abarrotes",
            "direccion": "",
            "telefono": "",
            "rol": "coordinador",
            "estado": "activo",
            "fecha_ingreso": rows[0]["fecha_ingreso"],
            "fecha_consentimiento": rows[0]["fecha_consentimiento"],
            "en_directorio": "sí",
        }
    ]


def test_invite_links_need_a_bot_name(cli_env, capsys, monkeypatch):
    barrio(
        capsys,
        "barrios",
        "create",
        "--name",
        "Barrio Sur",
        "--comuna",
        "Rengo",
        "--region",
        "O'Higgins",
    )
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME")
    with pytest.raises(SystemExit) as exit_info:
        main(["invite", "barrio-sur-rengo"])
    assert exit_info.value.code == 2
    assert "TELEGRAM_BOT_USERNAME o TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_a_barrio_created_without_a_bot_name_is_kept(cli_env, capsys, monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME")
    capsys.readouterr()
    main(["barrios", "create", "--name", "Barrio Norte", "--comuna", "Malloa", "--region", "X"])
    created = capsys.readouterr()
    assert "slug: barrio-norte-malloa" in created.out and "telegram:" not in created.out
    assert "después: barrio invite barrio-norte-malloa" in created.err
    assert "barrio-norte-malloa" in barrio(capsys, "barrios", "list")


def test_an_empty_webhook_secret_is_refused_in_one_line(cli_env):
    script = Path(sys.executable).parent / "barrio"
    for secret in ("", "dos palabras"):
        result = subprocess.run(
            [str(script), "barrios", "list"],
            capture_output=True,
            text=True,
            env={**os.environ, "TELEGRAM_WEBHOOK_SECRET": secret},
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            "barrio: TELEGRAM_WEBHOOK_SECRET debe tener de 1 a 256 caracteres entre A-Z, a-z, "
            "0-9, _ y - (sin espacios ni tildes)\n"
        )
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


async def test_run_never_prints_a_rejected_token(emulator, tmp_path):
    """PTB's InvalidToken quotes the token; `barrio run` must not pass it on."""
    import asyncio

    rejected = "987654:REJECTED-secret-part"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
        "TELEGRAM_BOT_TOKEN": rejected,
        "TELEGRAM_API_BASE_URL": emulator.base_url,
        "TELEGRAM_MODE": "polling",
        "PORT": "0",
    }
    env.pop("TELEGRAM_WEBHOOK_SECRET", None)
    env.pop("PUBLIC_BASE_URL", None)
    # Asynchronous, so the emulator in this loop can answer the bot's getMe.
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "barrio"),
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1, err
    assert err.decode().startswith("barrio: Telegram rechazó el token o no respondió")
    assert err.decode().count("\n") == 1 and b"Traceback" not in err
    for part in (rejected, rejected.split(":")[1]):
        assert part.encode() not in out + err
    assert "…" in err.decode()  # where the token was, the reader sees it was withheld


# --- the database an admin command works on -----------------------------------------------


def _fails(capsys, *args: str) -> str:
    """Run a command that must refuse: exit status 2 and one line on standard error."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    assert captured.err.startswith("barrio: ") and "Traceback" not in captured.err
    return captured.err.removeprefix("barrio: ").strip()


def test_a_mistyped_sqlite_path_is_refused_and_creates_nothing(cli_env, capsys, monkeypatch):
    typo = cli_env / "varr" / "barrio.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{typo}")
    for command in (
        ["barrios", "list"],
        ["barrios", "create", "--name", "Barrio Sur", "--comuna", "Rengo", "--region", "X"],
        ["invite", "barrio-sur-rengo"],
        ["export", "members", "--barrio", "barrio-sur-rengo"],
    ):
        said = _fails(capsys, *command)
        assert said.startswith(f"no existe la base de datos {typo} (revisa DATABASE_URL;"), said
        assert "`barrio db upgrade`" in said
    assert not typo.parent.exists()


def test_only_db_upgrade_creates_the_database(cli_env, capsys, monkeypatch):
    fresh = cli_env / "nueva" / "barrio.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{fresh}")
    assert barrio(capsys, "db", "upgrade") == "la base de datos está al día\n"
    assert fresh.is_file()
    assert barrio(capsys, "barrios", "list") == ""


def test_a_database_without_the_tables_is_refused_and_left_alone(cli_env, capsys, monkeypatch):
    import sqlite3

    empty = cli_env / "otra.sqlite3"
    sqlite3.connect(empty).close()
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{empty}")
    said = _fails(capsys, "barrios", "list")
    assert "no tiene las tablas de Barrio Conecta" in said
    assert "créalas con `barrio db upgrade`" in said
    connection = sqlite3.connect(empty)
    try:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        connection.close()


def _stamp(url: str, revision: str) -> None:
    """Set the database's migration mark, as an older or a newer program would leave it."""
    import asyncio

    from sqlalchemy import text

    from models import db

    async def stamp() -> None:
        engine = db.create_engine(url)
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision}
            )
        await engine.dispose()

    asyncio.run(stamp())


def test_a_database_not_at_the_newest_migration_is_refused(cli_env, capsys):
    """On SQLite and PostgreSQL alike: the check reads alembic's own mark."""
    from alembic.script import ScriptDirectory

    from models import db

    url = os.environ["DATABASE_URL"]
    script = ScriptDirectory.from_config(db.alembic_config())
    (head,) = script.get_heads()
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    try:
        _stamp(url, previous)
        said = _fails(capsys, "barrios", "list")
        assert said.endswith("está desactualizada: ponla al día con `barrio db upgrade`"), said
        _stamp(url, "9999_from_the_future")
        said = _fails(capsys, "barrios", "list")
        assert said.endswith(
            "es de una versión más nueva de Barrio Conecta: actualiza este programa"
        )
    finally:
        _stamp(url, head)
    assert barrio(capsys, "barrios", "list") == ""


# --- creating barrios -----------------------------------------------------------------------


def test_the_same_barrio_twice_is_refused_unless_forced(cli_env, capsys):
    create = ("barrios", "create", "--region", "O'Higgins")
    first = barrio(capsys, *create, "--name", "Barrio Estación", "--comuna", "Rancagua")
    assert "slug: barrio-estacion-rancagua" in first
    for name, comuna in (
        ("Barrio Estación", "Rancagua"),
        ("barrio  estacion", "RANCAGUA"),
        ("BARRIO ESTACIÓN ", "rancagua"),
    ):
        said = _fails(capsys, *create, "--name", name, "--comuna", comuna)
        assert said == (
            "ya existe Barrio Estación en Rancagua: barrio-estacion-rancagua "
            "(para crear otro con el mismo nombre, agrega --force)"
        )
    assert barrio(capsys, "barrios", "list").count("\n") == 1
    # Same name in another comuna is another barrio.
    other = barrio(capsys, *create, "--name", "Barrio Estación", "--comuna", "Rengo")
    assert "slug: barrio-estacion-rengo" in other
    forced = barrio(capsys, *create, "--name", "Barrio Estacion", "--comuna", "Rancagua", "--force")
    assert "slug: barrio-estacion-rancagua-2" in forced


# --- arguments: Spanish, one line, exit status 2 ------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "falta el comando: run | demo | db | barrios | invite | coordinators | export"),
        (["barrios"], "falta el subcomando: barrios list | create | set"),
        (["db"], "falta el subcomando: db upgrade"),
        (["export"], "falta el subcomando: export members | attendance"),
        (["coordinators"], "falta el subcomando: coordinators add"),
        (
            ["frobnicate"],
            "no existe el comando frobnicate; elige: "
            "run | demo | db | barrios | invite | coordinators | export",
        ),
        (
            ["barrios", "borrar"],
            "no existe el subcomando borrar; elige: barrios list | create | set",
        ),
        (["barrios", "create", "--name", "X"], "faltan --comuna y --region"),
        (["barrios", "create", "--name"], "a --name le falta su valor"),
        (["invite"], "falta SLUG"),
        (["export", "members"], "falta --barrio"),
        (["coordinators", "add", "--barrio", "x"], "falta --telegram-id o --phone"),
        (
            [
                "coordinators",
                "add",
                "--barrio",
                "x",
                "--telegram-id",
                "1",
                "--phone",
                "+56912345678",
            ],
            "usa --telegram-id o --phone, no los dos",
        ),
        (
            ["coordinators", "add", "--barrio", "x", "--telegram-id", "ana"],
            "--telegram-id lleva un número, no ana",
        ),
        (["export", "attendance", "--barrio", "x", "--all"], "no entiendo --all"),
        (["barrios", "list", "--open=sí"], "no entiendo --open=sí"),
        (["barrios", "set", "x"], "di qué cambiar: --timezone ZONA, --reminders HORAS o los dos"),
        (
            ["invite", "x", "--qr", "afiche.jpg"],
            "--qr lleva un nombre de archivo terminado en .png",
        ),
        (
            ["invite", "x", "--poster", "afiche.png"],
            "--poster lleva un nombre de archivo terminado en .pdf",
        ),
        (
            ["invite", "nada"],
            "no hay un barrio con el slug nada (míralos con `barrio barrios list`)",
        ),
    ],
)
def test_argument_errors_are_said_in_spanish(cli_env, capsys, args, said):
    error = _fails(capsys, *args)
    message, _, helped = error.partition(" (ayuda: ")
    assert message == said
    if helped:  # argparse's own errors point to the help of the command that was typed
        assert helped.startswith("barrio") and helped.endswith(" --help)")


HELP_PAGES = [
    [],
    ["run"],
    ["demo"],
    ["db"],
    ["db", "upgrade"],
    ["barrios"],
    ["barrios", "list"],
    ["barrios", "create"],
    ["barrios", "set"],
    ["invite"],
    ["coordinators"],
    ["coordinators", "add"],
    ["export"],
    ["export", "members"],
    ["export", "attendance"],
]


@pytest.mark.parametrize("command", HELP_PAGES, ids=lambda c: " ".join(c) or "barrio")
def test_help_is_spanish(cli_env, capsys, command):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    page = capsys.readouterr().out
    assert page.startswith(f"uso: {' '.join(['barrio', *command])} [-h]")
    assert "-h, --help" in page and "muestra esta ayuda y termina" in page
    for english in ("usage", "show this help", "positional arguments", "options:", "_command"):
        assert english not in page, page


def test_every_command_and_argument_is_explained():
    import argparse

    from bot.cli import _parser

    def unexplained(parser: argparse.ArgumentParser) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [
                    f"{parser.prog} {name}" for name in action.choices if name not in helped
                ]
                for sub in action.choices.values():
                    missing += unexplained(sub)
            elif not action.help:
                missing.append(f"{parser.prog} {action.dest}")
        return missing

    assert unexplained(_parser()) == []


# --- the members CSV -----------------------------------------------------------------------

JOINED = datetime(2026, 6, 18, 22, 0, tzinfo=UTC)  # 19:00 in Punta Arenas, 18:00 in Santiago
CONSENTED = datetime(2026, 6, 18, 21, 30, tzinfo=UTC)


def _seed_people(url: str, slug: str) -> None:
    """Members as registration leaves them: phones as handlers.profile stores them."""
    import asyncio

    from sqlalchemy import select

    from models import (
        Barrio,
        Meeting,
        Member,
        Membership,
        MembershipStatus,
        Role,
        Rsvp,
        RsvpAnswer,
        db,
    )

    people = [
        ("Ana", "Almacén Ana", "+56990000000", Role.COORDINATOR, MembershipStatus.ACTIVE),
        ('=HYPERLINK("x")', "-Bazar", "+56722123456", Role.MEMBER, MembershipStatus.PENDING),
        ("Rosa", "Botillería", None, Role.MEMBER, MembershipStatus.LEFT),
        ("Beto", "+Ferretería", "+56221234567", Role.MEMBER, MembershipStatus.REJECTED),
    ]

    async def seed() -> None:
        engine = db.create_engine(url)
        async with db.session_factory(engine, lambda: JOINED)() as session, session.begin():
            found = await session.scalar(select(Barrio).where(Barrio.slug == slug))
            meeting = Meeting(barrio=found, title="Reunión", starts_at=JOINED, place="Sede")
            session.add(meeting)
            for name, business, phone, role, status in people:
                member = Member(
                    name=name,
                    business_name=business,
                    business_category="almacen",
                    phone=phone,
                    consent_at=CONSENTED,
                    show_in_directory=name != "Ana",
                )
                session.add(Membership(member=member, barrio=found, role=role, status=status))
                if name == "Ana":
                    await session.flush()
                    session.add(
                        Rsvp(
                            meeting_id=meeting.id,
                            member_id=member.id,
                            answer=RsvpAnswer.YES,
                            answered_at=JOINED,
                        )
                    )
        await engine.dispose()

    asyncio.run(seed())


def _barrio_austral(capsys) -> str:
    barrio(
        capsys, "barrios", "create", "--name", "Barrio Austral", "--comuna", "Punta Arenas",
        "--region", "Magallanes",
    )  # fmt: skip
    barrio(
        capsys,
        "barrios",
        "set",
        "barrio-austral-punta-arenas",
        "--timezone",
        "America/Punta_Arenas",
    )
    return "barrio-austral-punta-arenas"


def test_members_csv_is_spanish_in_the_barrio_clock_with_dialable_phones(cli_env, capsys):
    slug = _barrio_austral(capsys)
    _seed_people(os.environ["DATABASE_URL"], slug)
    out = barrio(capsys, "export", "members", "--barrio", slug)
    rows = {row["nombre"]: row for row in csv.DictReader(io.StringIO(out))}
    assert list(next(csv.reader(io.StringIO(out)))) == [
        "nombre", "negocio", "rubro", "direccion", "telefono", "rol", "estado",
        "fecha_ingreso", "fecha_consentimiento", "en_directorio",
    ]  # fmt: skip
    assert rows["Ana"] == {
        "nombre": "Ana",
        "negocio": "Almacén Ana",
        "rubro": "Almacén y abarrotes",
        "direccion": "",
        "telefono": "9 9000 0000",
        "rol": "coordinador",
        "estado": "activo",
        "fecha_ingreso": "2026-06-18 19:00",
        "fecha_consentimiento": "2026-06-18 18:30",
        "en_directorio": "no",
    }
    hyperlink = rows['\'=HYPERLINK("x")']
    assert hyperlink["negocio"] == "'-Bazar"  # what a member typed stays text, not a formula
    assert hyperlink["telefono"] == "72 212 3456" and hyperlink["estado"] == "pendiente"
    assert hyperlink["rol"] == "socio" and hyperlink["en_directorio"] == "sí"
    assert set(rows) == {"Ana", '\'=HYPERLINK("x")'}  # active and pending only
    for row in rows.values():
        for cell in row.values():
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell

    everyone = {
        row["nombre"]: row
        for row in csv.DictReader(
            io.StringIO(barrio(capsys, "export", "members", "--barrio", slug, "--all"))
        )
    }
    assert everyone["Rosa"]["estado"] == "retirado" and everyone["Rosa"]["telefono"] == ""
    assert everyone["Beto"]["estado"] == "rechazado"
    assert everyone["Beto"]["telefono"] == "2 2123 4567"
    assert everyone["Beto"]["negocio"] == "'+Ferretería"


def test_a_barrio_without_its_own_zone_exports_in_barrio_timezone(cli_env, capsys, monkeypatch):
    barrio(
        capsys,
        "barrios",
        "create",
        "--name",
        "Barrio Centro",
        "--comuna",
        "Rancagua",
        "--region",
        "O'Higgins",
    )
    _seed_people(os.environ["DATABASE_URL"], "barrio-centro-rancagua")
    rows = list(
        csv.DictReader(
            io.StringIO(barrio(capsys, "export", "members", "--barrio", "barrio-centro-rancagua"))
        )
    )
    assert {row["fecha_ingreso"] for row in rows} == {"2026-06-18 18:00"}  # Santiago, UTC-4
    monkeypatch.setenv("BARRIO_TIMEZONE", "America/Punta_Arenas")
    rows = list(
        csv.DictReader(
            io.StringIO(barrio(capsys, "export", "members", "--barrio", "barrio-centro-rancagua"))
        )
    )
    assert {row["fecha_ingreso"] for row in rows} == {"2026-06-18 19:00"}


def test_attendance_is_dated_in_the_barrio_clock(cli_env, capsys):
    slug = _barrio_austral(capsys)
    _seed_people(os.environ["DATABASE_URL"], slug)
    rows = list(
        csv.DictReader(io.StringIO(barrio(capsys, "export", "attendance", "--barrio", slug)))
    )
    assert [(row["socio"], row["fecha_local"], row["respuesta"]) for row in rows] == [
        ("Ana", "2026-06-18 19:00", "asistire")
    ]
