"""The admin command line, as DESIGN.md spells it."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
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
    code = lines["invite code"]
    assert len(code) == 8 and lines["telegram"] == f"https://t.me/BarrioTestBot?start={code}"
    listing = barrio(capsys, "barrios", "list")
    assert "barrio-estacion-rancagua" in listing and "approval" in listing

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
    assert capsys.readouterr().err.startswith("barrio: PORT:")


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
    assert error.startswith("barrio: Telegram refused or did not answer")
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
    assert "Ana now coordinates Barrio Export" in added.stdout
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
            "estado": "active",
            "ingreso_utc": rows[0]["ingreso_utc"],
            "consentimiento_utc": rows[0]["consentimiento_utc"],
            "en_directorio": "si",
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
    assert "TELEGRAM_BOT_USERNAME or TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_a_barrio_created_without_a_bot_name_is_kept(cli_env, capsys, monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME")
    capsys.readouterr()
    main(["barrios", "create", "--name", "Barrio Norte", "--comuna", "Malloa", "--region", "X"])
    created = capsys.readouterr()
    assert "slug: barrio-norte-malloa" in created.out and "telegram:" not in created.out
    assert "later: barrio invite barrio-norte-malloa" in created.err
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
        assert result.stderr.startswith("barrio: TELEGRAM_WEBHOOK_SECRET: ")
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
    assert err.decode().startswith("barrio: Telegram refused or did not answer")
    assert err.decode().count("\n") == 1 and b"Traceback" not in err
    for part in (rejected, rejected.split(":")[1]):
        assert part.encode() not in out + err
    assert "…" in err.decode()  # where the token was, the reader sees it was withheld
