"""`barrio demo`, typed into as a person would: register, get approved, browse the directory;
on Telegram as Ana and Carmen, on WhatsApp (through the Twilio emulator) as Rosa."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
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
    env = _offline_env()
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
    # Who each persona is, as the database says at the time of the switch.
    assert "Chateas como Ana (emprendedora, sin registro)" in out
    assert "(ahora eres Carmen, emprendedora, coordina Barrio Comercial Rancagua)" in out
    assert "(ahora eres Ana, emprendedora, socia de Barrio Comercial Rancagua)" in out
    assert "(a Ana):\n¡Buenas noticias!" in out
    assert "Panadería La Espiga — Teresa Díaz" in out
    # the demo has its own database file and never touches the default one
    assert (tmp_path / "var" / "demo.sqlite3").exists()
    assert not (tmp_path / "var" / "barrio.sqlite3").exists()


def test_the_demo_starts_again_and_again_on_the_same_data(tmp_path):
    """Each start brings a new emulator that numbers its updates from 1 again, while
    `var/demo.sqlite3` keeps the previous sessions' inbound log."""
    script = Path(sys.executable).parent / "barrio"
    env = _offline_env()
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


def _offline_env() -> dict[str, str]:
    """The environment without a bot's own settings: no token, no Twilio, no database."""
    own = ("TELEGRAM_", "DATABASE_", "TWILIO_", "PUBLIC_BASE_URL")
    return {k: v for k, v in os.environ.items() if not k.startswith(own)}


def _demo(cwd: Path, typed: Callable[[str], list[str]]) -> str:
    """Run `barrio demo`, read its intro, then type `typed(intro)` and `:salir`; returns all it
    printed. (The intro says what only this data directory knows: the poster's code.)"""
    script = Path(sys.executable).parent / "barrio"
    demo = subprocess.Popen(
        [str(script), "demo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=_offline_env(),
    )
    assert demo.stdout is not None
    intro = b""
    deadline = time.monotonic() + 60
    with selectors.DefaultSelector() as selector:
        # Unbuffered reads, so that nothing read here is missing from `communicate` after.
        selector.register(demo.stdout, selectors.EVENT_READ)
        while b":salir" not in intro and time.monotonic() < deadline:
            if selector.select(timeout=1.0):
                chunk = os.read(demo.stdout.fileno(), 65536)
                if not chunk:
                    break
                intro += chunk
    try:
        lines = [*typed(intro.decode(errors="replace")), ":salir"] if b":salir" in intro else []
        out, err = demo.communicate("\n".join(lines).encode(), timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    return (intro + out).decode()


def _join_text(intro: str) -> str:
    """The join text the intro gives Rosa to paste, with Rancagua's code."""
    found = re.search(r"Hola, quiero unirme a mi barrio con el código [A-Z0-9]{8}", intro)
    assert found, intro
    return found[0]


def test_rosa_joins_on_whatsapp_from_the_poster_text_and_gets_carmens_announcement(
    tmp_path: Path,
) -> None:
    """Rosa types on WhatsApp what the poster's wa.me link fills in, answers the numbered
    lists with numbers, is approved by Carmen on Telegram and gets her announcement; the next
    run on the same data starts as well, and she is still a member."""
    out = _demo(
        tmp_path,
        lambda intro: [
            ":rosa",
            _join_text(intro),
            "Rosa Vergara",
            "Almacén Rosita",
            "1",  # rubro: *1.* Almacén y abarrotes, typed as text
            "1",  # *1.* Acepto
            ":carmen",
            "1",  # Aprobar
            "/anuncio",
            "Mañana hay feria en la plaza.",
            "1",  # Enviar
        ],
    )
    assert ":rosa " in out
    assert "Te invitaron a unirte a Barrio Comercial Rancagua" in out
    assert "*1.* 🛒 Almacén y abarrotes" in out
    assert "Tu solicitud para unirte a Barrio Comercial Rancagua quedó enviada" in out
    assert "(a Carmen):\nNueva solicitud para Barrio Comercial Rancagua:\n👤 Rosa Vergara" in out
    assert "Aprobaste a Rosa Vergara" in out
    assert "(a Rosa, por WhatsApp):\n¡Buenas noticias!" in out
    announcement = "📣 Anuncio de Barrio Comercial Rancagua:\n\nMañana hay feria en la plaza."
    assert f"(a Rosa, por WhatsApp):\n{announcement}" in out

    # The next start, on the same data: a new Twilio emulator, Rosa still a member.
    again = _demo(tmp_path, lambda _intro: [":rosa", "BARRIO"])
    # The sample people are still six: Rosa is the person trying it, and says where she is.
    assert "y 6 socios de ejemplo" in again
    assert "Rosa (almacenera en WhatsApp, socia de Barrio Comercial Rancagua)" in again
    assert "🏘️ Barrio Comercial Rancagua" in again and "✅ Participas en este barrio" in again
