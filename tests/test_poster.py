"""`barrio invite --poster`, checked as a person would: the PDF rendered to a picture, its QR
codes read back by a decoder, their printed size measured, and its words read."""

from __future__ import annotations

import pypdfium2 as pdfium
import pytest
import zxingcpp

from tests.test_cli import barrio

DPI = 150
MM_PER_INCH = 25.4
A4_POINTS = (595.28, 841.89)
TELEGRAM = "https://t.me/BarrioTestBot?start={code}"
WHATSAPP = (
    "https://wa.me/56912345678?text=Hola%2C%20quiero%20unirme%20a%20mi%20barrio%20con%20el"
    "%20c%C3%B3digo%20{code}"
)


def _create(capsys, name: str = "Barrio Estación") -> tuple[str, str]:
    out = barrio(
        capsys, "barrios", "create", "--name", name, "--comuna", "Rancagua",
        "--region", "O'Higgins",
    )  # fmt: skip
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    return lines["slug"], lines["código de invitación"]


class Poster:
    """The first page of a PDF as a person sees it: a picture, and the words on it."""

    def __init__(self, path) -> None:
        document = pdfium.PdfDocument(path)
        self.pages = len(document)
        page = document[0]
        self.size = page.get_size()
        self.image = page.render(scale=DPI / 72).to_pil()
        text = page.get_textpage()
        self.text = text.get_text_range()
        self.words = " ".join(self.text.split())
        text.close()
        page.close()
        document.close()

    def codes(self) -> list[tuple[str, float, float, float]]:
        """Each QR code read from the picture: its text, width in mm, and centre (x, y) in mm."""
        found = []
        for result in zxingcpp.read_barcodes(self.image):
            assert result.format == zxingcpp.BarcodeFormat.QRCode
            corner = result.position
            width = (corner.top_right.x - corner.top_left.x) / DPI * MM_PER_INCH
            middle_x = (corner.top_left.x + corner.top_right.x) / 2 / DPI * MM_PER_INCH
            middle_y = (corner.top_left.y + corner.bottom_left.y) / 2 / DPI * MM_PER_INCH
            found.append((result.text, width, middle_x, middle_y))
        return sorted(found, key=lambda code: code[2])


def test_the_poster_has_both_codes_side_by_side_and_says_how_to_join(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("TWILIO_WHATSAPP_FROM", "whatsapp:+56912345678")
    slug, code = _create(capsys)
    out = barrio(capsys, "invite", slug, "--poster", str(cli_env / "afiche.pdf"))
    assert out.splitlines() == [
        TELEGRAM.format(code=code),
        WHATSAPP.format(code=code),
        f"afiche guardado en {cli_env / 'afiche.pdf'}",
    ]
    poster = Poster(cli_env / "afiche.pdf")
    assert poster.pages == 1 and poster.size == pytest.approx(A4_POINTS, abs=0.5)

    (telegram, whatsapp) = poster.codes()
    assert telegram[0] == TELEGRAM.format(code=code)
    assert whatsapp[0] == WHATSAPP.format(code=code)
    for _, width, _, _ in (telegram, whatsapp):
        assert width >= 70  # mm: scans from a metre away
    assert telegram[3] == pytest.approx(whatsapp[3], abs=1)  # beside each other
    assert whatsapp[2] - telegram[2] >= 70 + 20  # with room for each code's quiet zone

    for words in (
        "Barrio Estación",
        "Rancagua, O'Higgins",
        "Anuncios, reuniones, alertas y fondos Sercotec de tu barrio, en tu teléfono.",
        "Escanea con la cámara de tu teléfono",
        "Telegram",
        "WhatsApp",
        "¿No puedes escanear?",
        f"Abre {TELEGRAM.format(code=code)}",
        f"o busca @BarrioTestBot en Telegram y escríbele: /start {code}",
        "Escribe al +56 9 1234 5678:",
        f"Hola, quiero unirme a mi barrio con el código {code}",
        f"Código de invitación {code}",
    ):
        assert words in poster.words, words
    _labels_above(poster, cli_env / "afiche.pdf", telegram, whatsapp)


def _labels_above(poster: Poster, path, *codes: tuple[str, float, float, float]) -> None:
    """Each code has its channel's name over it, centred."""
    document = pdfium.PdfDocument(path)
    page = document[0]
    text = page.get_textpage()
    height = poster.size[1]
    for (_, width, middle_x, middle_y), label in zip(codes, ("Telegram", "WhatsApp"), strict=True):
        searcher = text.search(label, match_case=True, match_whole_word=True)
        boxes = []
        while (found := searcher.get_next()) is not None:
            start, count = found
            left, _, _, top = text.get_charbox(start)  # (left, bottom, right, top) in points
            right = text.get_charbox(start + count - 1)[2]
            boxes.append(((left + right) / 2 / 72 * MM_PER_INCH, (height - top) / 72 * MM_PER_INCH))
        searcher.close()
        top_of_code = middle_y - width / 2
        assert any(abs(x - middle_x) < 5 and 0 < top_of_code - y < 25 for x, y in boxes), (
            label,
            boxes,
            middle_x,
            top_of_code,
        )
    text.close()
    page.close()
    document.close()


def test_without_whatsapp_the_poster_has_one_large_code(cli_env, capsys):
    slug, code = _create(capsys)
    barrio(capsys, "invite", slug, "--poster", str(cli_env / "afiche.pdf"))
    poster = Poster(cli_env / "afiche.pdf")
    ((link, width, middle_x, _),) = poster.codes()
    assert link == TELEGRAM.format(code=code)
    assert width >= 90 and middle_x == pytest.approx(210 / 2, abs=2)
    assert "WhatsApp" not in poster.words and f"Código de invitación {code}" in poster.words


def test_a_long_name_still_fits_with_codes_that_scan(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("TWILIO_WHATSAPP_FROM", "whatsapp:+14155238886")
    name = "Barrio Comercial Avenida Libertador Bernardo O'Higgins y Calle Estado, Centro"
    slug, code = _create(capsys, name)
    barrio(
        capsys,
        "invite",
        slug,
        "--poster",
        str(cli_env / "afiche.pdf"),
        "--qr",
        str(cli_env / "qr.png"),
    )
    poster = Poster(cli_env / "afiche.pdf")
    assert name in poster.words
    assert "Escribe al +14155238886:" in poster.words
    codes = poster.codes()
    assert [link for link, *_ in codes] == [
        TELEGRAM.format(code=code),
        WHATSAPP.format(code=code).replace("56912345678", "14155238886"),
    ]
    assert all(width >= 70 for _, width, _, _ in codes)
    # The same links as the --qr files written beside it.
    from PIL import Image

    for path, (link, *_) in zip(("qr.png", "qr-whatsapp.png"), codes, strict=True):
        with Image.open(cli_env / path) as image:
            assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == [link]


def test_a_poster_that_cannot_be_written_is_one_line(cli_env, capsys):
    slug, _ = _create(capsys)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        from bot.cli import main

        main(["invite", slug, "--poster", str(cli_env / "no-such-folder" / "afiche.pdf")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"barrio: no pude guardar {cli_env / 'no-such-folder' / 'afiche.pdf'}: no existe la carpeta\n"
    )
