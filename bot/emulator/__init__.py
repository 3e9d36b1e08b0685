"""Local emulators of the outside services the bot talks to (the Telegram Bot API).

`from bot.emulator import TelegramEmulator, serve_emulator, api_base_url` works; the names are
loaded lazily so `python -m bot.emulator.telegram` does not import the module twice.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {"TelegramEmulator", "serve_emulator", "serve_asgi", "api_base_url", "file_base_url"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from bot.emulator import telegram

        return getattr(telegram, name)
    raise AttributeError(f"module 'bot.emulator' has no attribute {name!r}")
