"""Draws docs/afiche-ejemplo.png: the poster `barrio invite --poster` prints, for an example barrio.

The real command on a throwaway database, its PDF rendered to PNG as a printer would (pypdfium2,
a dev dependency). Run `.venv/bin/python docs/afiche_ejemplo.py` after changing bot/poster.py.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pypdfium2 as pdfium

from bot.cli import main

PICTURE = Path(__file__).with_name("afiche-ejemplo.png")
DPI = 100


def draw() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.update(
            DATABASE_URL=f"sqlite+aiosqlite:///{scratch}/ejemplo.sqlite3",
            TELEGRAM_BOT_USERNAME="BarrioConectaBot",
            TWILIO_WHATSAPP_FROM="whatsapp:+56912345678",
        )
        os.environ.pop("TELEGRAM_BOT_TOKEN", None)
        poster = f"{scratch}/afiche.pdf"
        with redirect_stdout(StringIO()) as said:
            main(["db", "upgrade"])
            main(
                ["barrios", "create", "--name", "Barrio Estación", "--comuna", "Rancagua",
                 "--region", "O'Higgins"]
            )  # fmt: skip
            main(["invite", "barrio-estacion-rancagua", "--poster", poster])
        assert "afiche guardado" in said.getvalue(), said.getvalue()
        document = pdfium.PdfDocument(poster)
        image = document[0].render(scale=DPI / 72).to_pil().convert("L")
        image.save(PICTURE, optimize=True)
        document.close()
    print(f"{PICTURE} ({image.width}×{image.height})")


if __name__ == "__main__":
    draw()
