"""The WhatsApp transport's own logic: webhook parameters to `Inbound`, options as a numbered
list, long messages split in order, Twilio's errors mapped to the outbox's retry rules."""

from __future__ import annotations

import re

import pytest
from twilio.base.exceptions import TwilioRestException

from bot.whatsapp import JOIN_TEXT, MAX_BODY, _mapped, inbound_from_webhook, render
from handlers import texts
from handlers.core import InboundKind, Option
from scheduler.outbox import RetryLater, SendFailed, Unreachable


def test_webhook_parameters_become_what_the_core_understands():
    text = inbound_from_webhook({"From": "whatsapp:+56911111111", "Body": "reuniones"})
    assert (text.channel, text.sender_id, text.kind, text.text) == (
        "whatsapp", "+56911111111", InboundKind.TEXT, "reuniones",
    )  # fmt: skip
    place = inbound_from_webhook(
        {"From": "whatsapp:+56911111111", "Latitude": "-34.17", "Longitude": "-70.74"}
    )
    assert place.kind == InboundKind.LOCATION and place.location == (-34.17, -70.74)
    photo = inbound_from_webhook(
        {
            "From": "whatsapp:+56911111111",
            "NumMedia": "1",
            "MediaContentType0": "image/jpeg",
            "MediaUrl0": "https://api.twilio.com/media/ME1",
            "Body": "mi local",
        }
    )
    assert photo.kind == InboundKind.MEDIA and photo.text == "mi local"
    assert inbound_from_webhook({"Body": "hola"}) is None


def test_the_posters_join_text_registers_into_its_barrio():
    joining = inbound_from_webhook(
        {"From": "whatsapp:+56911111111", "Body": JOIN_TEXT.format(code="K7M2Q9XA")}
    )
    assert (joining.kind, joining.command, joining.args) == (
        InboundKind.COMMAND, "start", "K7M2Q9XA",
    )  # fmt: skip


def test_options_are_a_numbered_list_to_answer_by_typing():
    [body] = render(
        "¿Vienes?", [Option("✅ Asistiré", "rsv:y:1"), Option("❌ No podré", "rsv:n:1")]
    )
    assert body == (
        "¿Vienes?\n\n*1.* ✅ Asistiré\n*2.* ❌ No podré\n\nResponde con el número de tu opción."
    )


def test_a_long_message_is_split_in_order_at_line_breaks_and_numbered():
    lines = [f"Línea {n}: " + "x" * 90 for n in range(40)]
    parts = render("\n".join(lines), [])
    assert len(parts) == 3 and all(len(p) <= MAX_BODY for p in parts)
    assert [p[:6] for p in parts] == ["(1/3) ", "(2/3) ", "(3/3) "]
    rebuilt = "\n".join(p[6:] for p in parts)
    assert rebuilt == "\n".join(lines)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 20429, RetryLater),
        (400, 63018, RetryLater),
        (400, 21610, Unreachable),
        (400, 63016, SendFailed),
        (503, None, SendFailed),
        (400, 21211, SendFailed),
    ],
)
def test_twilio_errors_follow_the_outbox_rules(status, code, expected):
    mapped = _mapped(TwilioRestException(status, "uri", "msg", code=code))
    assert isinstance(mapped, expected)
    if isinstance(mapped, SendFailed):
        assert mapped.permanent == (status < 500)
    if isinstance(mapped, RetryLater):
        # A rate limit holds every send; the daily cap on new conversations only that one.
        assert mapped.whole_channel == (code != 63018)


def test_commands_are_spelt_as_typed_on_whatsapp():
    [body] = render("Escribe /directorio para conocer a tus vecinos, o /cancelar.", [])
    assert body == "Escribe DIRECTORIO para conocer a tus vecinos, o CANCELAR."
    [link] = render("Bases en https://www.sercotec.cl/fondos y en /noexiste.", [])
    assert link == "Bases en https://www.sercotec.cl/fondos y en /noexiste."


def test_texts_that_say_tap_a_button_say_type_its_number_on_whatsapp():
    catalog = [v for v in vars(texts).values() if isinstance(v, str)]
    for telegram_words in texts.WHATSAPP_WORDING:
        # Each phrase replaced is in the catalog: the table cannot outlive the texts.
        assert any(telegram_words in text for text in catalog), telegram_words
    menu = render(texts.MENU_PROMPT, [Option("🏪 Mi barrio", "menu:barrio")])[0]
    assert "Toca" not in menu and menu.startswith("¿Qué quieres hacer? Elige una opción.")
    assert render(texts.CHOOSE_FROM_OPTIONS, []) == [
        "Elige una de las opciones escribiendo su número."
    ]
    # No text in the catalog tells a WhatsApp user to tap a button WhatsApp does not show
    # (📎 is WhatsApp's own).
    for name, text in vars(texts).items():
        if isinstance(text, str):
            shown = "\n".join(render(text, []))
            assert not re.search(r"bot[oó]n|[Tt]oca(?! 📎)|[Tt]ócalo|[Tt]ocando", shown), name


async def test_media_is_fetched_only_from_twilios_api():
    """A MediaUrl names where the bot fetches, with the account's credentials: only Twilio's
    API (or the emulator configured in its place) gets them."""
    from bot import files
    from bot.whatsapp import fetch_media

    for url, base in (
        ("https://attacker.example/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", None),
        ("https://api.twilio.com.attacker.example/x", None),
        ("http://127.0.0.1:9/2010-04-01/x", "http://127.0.0.1:8"),
    ):
        with pytest.raises(ValueError, match="outside Twilio"):
            await fetch_media(files.WHATSAPP_MEDIA + url, "AC1", "secret", base)
