"""The printable A4 poster of `barrio invite --poster`: a barrio's name, its QR codes, its code.

Drawn as a vector PDF with reportlab: text stays selectable and the QR modules stay sharp at any
printer's resolution. The QR matrix comes from qrcode, the encoder behind `--qr` as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm, mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

PURPOSE = "Anuncios, reuniones, alertas y fondos Sercotec de tu barrio, en tu teléfono."
SCAN = "Escanea con la cámara de tu teléfono"
CANNOT_SCAN = "¿No puedes escanear?"
CODE_LABEL = "Código de invitación"
TITLE = "Únete a {barrio}"

# A phone reads a code from about ten times its width: 10 cm alone, 7.5 cm side by side, so that
# a poster on a shop's window scans from a metre away. Sizes are of the modules, not counting
# the white quiet zone of 4 modules a reader needs around each code.
SINGLE_QR = 10 * cm
PAIRED_QR = 7.5 * cm
PAIR_GAP = 2.5 * cm
MARGIN = 18 * mm
BOLD, REGULAR, MONO = "Helvetica-Bold", "Helvetica", "Courier-Bold"


@dataclass(frozen=True)
class Invite:
    """One way in: the channel's name, the link its QR code opens, what to do without a camera."""

    channel: str
    link: str
    by_hand: tuple[str, ...]


@dataclass(frozen=True)
class _Text:
    text: str
    font: str
    size: float
    space_before: float = 0.0
    max_lines: int = 1


def write_poster(
    path: str, *, barrio: str, place: str, code: str, invites: Sequence[Invite]
) -> None:
    """One A4 page; `place` is the line under the name (comuna and region)."""
    if not 1 <= len(invites) <= 2:
        raise ValueError("a poster has one or two QR codes")
    width, height = A4
    page = Canvas(path, pagesize=A4, pageCompression=1)
    page.setTitle(TITLE.format(barrio=barrio))
    page.setAuthor("Barrio Conecta")
    page.setSubject(PURPOSE)

    header = [
        _Text(barrio, BOLD, 36, max_lines=2),
        _Text(place, REGULAR, 20, 2 * mm),
        _Text(PURPOSE, REGULAR, 14, 6 * mm, max_lines=2),
        _Text(SCAN, BOLD, 24, 10 * mm),
    ]
    footer = [_Text(CANNOT_SCAN, BOLD, 15)]
    for invite in invites:
        footer.append(_Text(invite.channel, BOLD, 12, 4 * mm))
        footer.extend(_Text(line, REGULAR, 12, 1 * mm, max_lines=2) for line in invite.by_hand)
    footer += [_Text(CODE_LABEL, REGULAR, 14, 8 * mm), _Text(code, MONO, 40, 1 * mm)]

    below_header = _draw(page, header, height - MARGIN, width)
    footer_top = MARGIN + _height(footer, width)
    _draw(page, footer, footer_top, width)

    # The codes under their labels, in the middle of the room between header and footer, each
    # with the white quiet zone of 4 modules a reader needs around it.
    matrices = [_matrix(invite.link) for invite in invites]
    modules = max(len(matrix) for matrix in matrices)
    label, label_gap = 18.0, 4 * mm
    below_header -= 8 * mm
    room = below_header - footer_top - label - label_gap
    size = min(SINGLE_QR if len(invites) == 1 else PAIRED_QR, room / (1 + 8 / modules))
    quiet = 4 * size / modules
    top = below_header - (room - size - 2 * quiet) / 2
    row = len(invites) * size + (len(invites) - 1) * PAIR_GAP
    for index, (invite, matrix) in enumerate(zip(invites, matrices, strict=True)):
        left = (width - row) / 2 + index * (size + PAIR_GAP)
        page.setFont(BOLD, label)
        page.drawCentredString(left + size / 2, top - label, invite.channel)
        bottom = top - label - label_gap - quiet - size
        _draw_qr(page, matrix, left, bottom, size)
        page.linkURL(invite.link, (left, bottom, left + size, bottom + size), relative=0)
    page.showPage()
    page.save()


def _lines(text: _Text, page_width: float) -> tuple[list[str], float]:
    """The text's lines and font size: shrunk until it fits the page's width in `max_lines`."""
    width, size = page_width - 2 * MARGIN, text.size
    lines = simpleSplit(text.text, text.font, size, width)
    while len(lines) > text.max_lines or any(
        stringWidth(line, text.font, size) > width for line in lines
    ):
        size *= 0.92
        lines = simpleSplit(text.text, text.font, size, width)
    return lines, size


def _height(texts: Sequence[_Text], page_width: float) -> float:
    total = 0.0
    for text in texts:
        lines, size = _lines(text, page_width)
        total += text.space_before + len(lines) * size * 1.25
    return total


def _draw(page: Canvas, texts: Sequence[_Text], top: float, page_width: float) -> float:
    """Centred lines from `top` down; returns where they end."""
    y = top
    for text in texts:
        lines, size = _lines(text, page_width)
        y -= text.space_before
        page.setFont(text.font, size)
        for line in lines:
            y -= size * 1.25
            page.drawCentredString(page_width / 2, y + size * 0.25, line)
    return y


def _matrix(link: str) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    code.add_data(link)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def _draw_qr(
    page: Canvas, matrix: list[list[bool]], left: float, bottom: float, size: float
) -> None:
    module = size / len(matrix)
    page.setFillColorRGB(0, 0, 0)
    path = page.beginPath()
    for row, cells in enumerate(matrix):
        column = 0
        while column < len(cells):
            if not cells[column]:
                column += 1
                continue
            # One rectangle per run of dark modules: no hairline seams between neighbours.
            start = column
            while column < len(cells) and cells[column]:
                column += 1
            y = bottom + size - (row + 1) * module
            path.rect(left + start * module, y, (column - start) * module, module)
    page.drawPath(path, stroke=0, fill=1)
