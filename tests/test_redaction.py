"""What a library puts in an exception message cannot carry the bot's secrets into the log."""

from __future__ import annotations

import logging

from bot.logs import RedactSecrets, token_parts

TOKEN = "424242:TEST-token-barrio"


def test_the_token_is_redacted_from_messages_and_tracebacks():
    record_log: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            record_log.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactSecrets(token_parts(TOKEN)))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("getUpdates failed: %s", f"The token `{TOKEN}` was rejected by the server.")
        try:
            raise ValueError(f"bad url https://x/bot{TOKEN}/getMe")
        except ValueError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    written = "\n".join(record_log)
    assert "rejected by the server" in written and "ValueError" in written
    assert "TEST-token-barrio" not in written and TOKEN not in written


def test_database_error_details_do_not_reach_the_log():
    written: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            written.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactSecrets([]))
    logger = logging.getLogger("tests.redaction.db")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(
                'null value in column "created_at" violates not-null constraint\n'
                "DETAIL:  Failing row contains (7, Zoraida Quispe, +56987654321)."
            )
        except RuntimeError:
            logger.exception("turn failed (telegram text)")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(written)
    assert "not-null constraint" in text and "DETAIL: …" in text
    assert "Zoraida" not in text and "+5698" not in text
