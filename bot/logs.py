"""How the bot logs: ids and kinds, never the secrets it holds.

Log lines are written with ids only (see the callers); this is the second line of defence for
what a library puts in an exception message, such as python-telegram-bot's InvalidToken, which
quotes the token whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "…"


# PostgreSQL's error details quote the row ("Failing row contains (…)", "Key (…)=(…)"):
# names and phones that `hide_parameters` cannot reach.
DATABASE_DETAIL = re.compile(r"^[ \t]*(DETAIL|HINT):.*$", re.MULTILINE)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return DATABASE_DETAIL.sub(r"\1: …", text)


def token_parts(token: str | None) -> list[str]:
    """The token and its secret half (after the colon), longest first."""
    if not token:
        return []
    return [part for part in (token, token.partition(":")[2]) if len(part) >= 8]


class RedactSecrets(logging.Filter):
    """Replaces each secret in a record's message and traceback before any handler writes it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


def configure(level: int, secrets: Iterable[str] = ()) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)
    quiet_libraries()
    redactor = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)


def quiet_libraries() -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every URL, and Telegram URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # twilio writes ten INFO lines for every request it makes (URL, each header, status):
    # an operator would find nothing else in the log of a busy barrio.
    logging.getLogger("twilio").setLevel(logging.WARNING)
