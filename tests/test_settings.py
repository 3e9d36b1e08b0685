"""Settings read from the environment: what is accepted, what is normalised, what is refused."""

from __future__ import annotations

import re

import pytest

from bot.runtime import Runtime
from bot.settings import TELEGRAM_API_BASE_URL, SettingsError, load_settings
from tests.support import TOKEN, text_of


@pytest.mark.parametrize(
    "given",
    [
        "http://localhost:8081",
        "http://localhost:8081/",
        "http://localhost:8081/bot",
        "http://localhost:8081/bot/",
    ],
)
def test_api_base_url_accepts_the_root_and_ptbs_trailing_bot(given):
    settings = load_settings(telegram_api_base_url=given)
    assert settings.telegram_api_base_url == "http://localhost:8081"


def test_api_base_url_keeps_a_path_that_only_looks_like_bot():
    # A reverse proxy may mount the Bot API under a prefix; only PTB's own suffix is dropped.
    settings = load_settings(telegram_api_base_url="https://proxy.example/robot")
    assert settings.telegram_api_base_url == "https://proxy.example/robot"


def test_api_base_url_defaults_to_telegrams():
    assert load_settings(telegram_api_base_url="").telegram_api_base_url == TELEGRAM_API_BASE_URL


async def test_runtime_with_a_trailing_bot_base_url_starts_and_answers(settings, emulator):
    with_bot = load_settings(
        **{
            name: getattr(settings, name)
            for name in ("database_url", "telegram_mode", "host", "port")
        },
        public_base_url=None,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=emulator.base_url + "/bot",
        telegram_rate_per_s=1000,
        telegram_chat_rate_per_s=1000,
    )
    runtime = Runtime(with_bot)
    await runtime.start()
    try:
        update = emulator.send_text(7801, "/ayuda")
        await runtime.transport.wait_handled(update["update_id"])
        assert "Barrio Conecta une" in text_of(emulator.sent(7801))
    finally:
        await runtime.stop()


@pytest.mark.parametrize(
    "secret",
    ["", "con espacio", "ñandú", "a/b", "x" * 257, "tab\there"],
    ids=["empty", "space", "non-ascii", "slash", "too-long", "tab"],
)
def test_webhook_secret_outside_telegrams_alphabet_is_refused(secret):
    with pytest.raises(SettingsError) as error:
        load_settings(telegram_webhook_secret=secret)
    message = str(error.value)
    assert message.startswith("TELEGRAM_WEBHOOK_SECRET: ")
    assert "\n" not in message
    if secret:
        assert secret not in message  # it is a secret: never echoed


@pytest.mark.parametrize("secret", ["a", "A-z_09", "x" * 256])
def test_webhook_secret_in_telegrams_alphabet_is_kept(secret):
    settings = load_settings(telegram_webhook_secret=secret)
    assert settings.telegram_webhook_secret.get_secret_value() == secret


def test_generated_webhook_secret_fits_telegrams_alphabet(monkeypatch):
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    first = load_settings().telegram_webhook_secret.get_secret_value()
    second = load_settings().telegram_webhook_secret.get_secret_value()
    assert first != second
    for secret in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret)
        # What the validator accepts, since set_webhook is sent this very value.
        assert load_settings(telegram_webhook_secret=secret).telegram_webhook_secret
