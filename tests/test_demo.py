"""`barrio demo`, typed into as a person would: register, get approved, browse the directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_registration_approval_and_directory(tmp_path):
    script = Path(sys.executable).parent / "barrio"
    typed = "\n".join(
        [
            "/start",
            "Ana Pérez",
            "Almacén Ana",
            "1",  # rubro: Almacén
            "rancagua",  # filter the barrio list by comuna
            "1",
            "1",  # Acepto
            ":carmen",
            "1",  # Aprobar
            ":ana",
            "/directorio pan",
            ":salir",
        ]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    result = subprocess.run(
        [str(script), "demo"],
        input=typed,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Barrios que coinciden con «rancagua»" in out
    assert "Tu solicitud para unirte a Barrio Comercial Rancagua quedó enviada" in out
    assert "(a Carmen):\nNueva solicitud para Barrio Comercial Rancagua" in out
    assert "Aprobaste a Ana Pérez" in out
    assert "(a Ana):\n¡Buenas noticias!" in out
    assert "Panadería La Espiga — Rosa Díaz" in out
    # the demo has its own database file and never touches the default one
    assert (tmp_path / "var" / "demo.sqlite3").exists()
    assert not (tmp_path / "var" / "barrio.sqlite3").exists()


def test_the_demo_starts_again_and_again_on_the_same_data(tmp_path):
    """Each start brings a new emulator that numbers its updates from 1 again, while
    `var/demo.sqlite3` keeps the previous sessions' inbound log."""
    script = Path(sys.executable).parent / "barrio"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    for start in range(3):
        result = subprocess.run(
            [str(script), "run", "--demo-without-token"],
            input="/start\n:salir\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, (start, result.stderr)
        assert "Traceback" not in result.stderr
        assert "Soy Barrio Conecta" in result.stdout, (start, result.stdout[-500:])
