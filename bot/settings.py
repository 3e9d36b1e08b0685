"""Settings of a Barrio Conecta deployment, read once from the environment or `.env`.

Every entry point (the bot, the demo, the admin commands) reads the same `Settings`, so a
command run beside a live bot talks to the same database with the same rules.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")
TELEGRAM_API_BASE_URL = "https://api.telegram.org"
# What Telegram's setWebhook accepts as secret_token; anything else it refuses, and an empty
# secret would let anyone post updates.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
# A WhatsApp number as identities store it (E.164), the same rule as `coordinators add --phone`.
WHATSAPP_NUMBER = re.compile(r"\+[1-9]\d{6,14}")
# Telegram user ids are positive and fit in 52 bits.
MAX_TELEGRAM_ID = 2**52


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


# What the person who runs the deployment reads when a setting is refused: Spanish, like the
# rest of `barrio`, one line, naming the variable as it is written in the environment.
# pydantic's error types, by `type`; {name} is the variable, the other fields come from the
# error's `ctx`. What was given follows as "(llegó «…»)", except for the secret settings.
PROBLEMS = {
    "missing": "falta {name}",
    "int_type": "{name} debe ser un número entero",
    "int_parsing": "{name} debe ser un número entero",
    "int_parsing_size": "{name} debe ser un número entero",
    "int_from_float": "{name} debe ser un número entero",
    "float_type": "{name} debe ser un número, con punto decimal como 0.5",
    "float_parsing": "{name} debe ser un número, con punto decimal como 0.5",
    "finite_number": "{name} debe ser un número",
    "bool_type": "{name} debe ser true o false",
    "bool_parsing": "{name} debe ser true o false",
    "string_type": "{name} debe ser un texto",
    "string_too_short": "{name} debe tener al menos {min_length} caracteres",
    "string_too_long": "{name} debe tener hasta {max_length} caracteres",
    "greater_than": "{name} debe ser mayor que {gt}",
    "greater_than_equal": "{name} debe ser {ge} o más",
    "less_than": "{name} debe ser menor que {lt}",
    "less_than_equal": "{name} debe ser {le} o menos",
    "url_type": "{name} debe ser una dirección web como https://bot.ejemplo.cl",
    "url_parsing": "{name} debe ser una dirección web como https://bot.ejemplo.cl",
    "url_scheme": "{name} debe ser una dirección web como https://bot.ejemplo.cl",
    "url_syntax_violation": "{name} debe ser una dirección web como https://bot.ejemplo.cl",
    "literal_error": "{name} debe ser {expected}",
    "enum": "{name} debe ser {expected}",
    "json_type": "{name} debe ser JSON válido",
    "json_invalid": "{name} debe ser JSON válido",
    "list_type": "{name} debe ser una lista separada por comas",
    "tuple_type": "{name} debe ser una lista separada por comas",
}
# Any other type, or a ValueError that is not one of ours below.
PROBLEM_UNKNOWN = "{name} no tiene un valor válido"
WHOLE_CONFIGURATION = "la configuración"
GIVEN = " (llegó «{value}»)"
GIVEN_EMPTY = " (está vacía)"
# Our own validators' problems, said after the variable's name.
BAD_DATABASE_URL = "debe ser sqlite+aiosqlite:///ARCHIVO o postgresql+asyncpg://SERVIDOR/BASE"
BAD_ZONE = "debe ser una zona horaria como America/Santiago o America/Punta_Arenas"
BAD_HTTP_URL = "debe empezar con https:// o http://"
BAD_WEBHOOK_SECRET = (
    "debe tener de 1 a 256 caracteres entre A-Z, a-z, 0-9, _ y - (sin espacios ni tildes)"
)
BAD_TELEGRAM_IDS = (
    "debe llevar ids de Telegram separados por comas, como 123456789,987654321 («{item}» no es uno)"
)
BAD_WHATSAPP_NUMBERS = (
    "debe llevar números de WhatsApp separados por comas, como +56912345678,+56987654321 "
    "(«{item}» no es uno)"
)
BAD_CONTENT_SID = "debe ser un Content SID de Twilio: HX y 32 dígitos hexadecimales"
BAD_LIST = "debe ser una lista separada por comas"
WEBHOOK_WITHOUT_URL = (
    "TELEGRAM_MODE=webhook necesita PUBLIC_BASE_URL, la dirección pública del bot "
    "(por ejemplo https://bot.ejemplo.cl)"
)
ENV_FILE_NOT_UTF8 = (
    "no pude leer el archivo .env: su línea {line} no está en UTF-8 (guárdalo con esa codificación)"
)
# Never shown, not even when refused: a database URL may carry its password.
SECRET_SETTINGS = frozenset(
    {"telegram_bot_token", "telegram_webhook_secret", "twilio_auth_token", "database_url"}
)
SHOWN_CHARACTERS = 40


class _Refused(ValueError):
    """One of our validators' refusals, in Spanish, said after the variable's name."""


def default_database_url(data_dir: Path = DEFAULT_DATA_DIR, name: str = "barrio.sqlite3") -> str:
    return f"sqlite+aiosqlite:///{(data_dir / name).as_posix()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = Field(default_factory=default_database_url)
    telegram_bot_token: SecretStr | None = None
    telegram_bot_username: str | None = None
    telegram_api_base_url: str = TELEGRAM_API_BASE_URL
    public_base_url: str | None = None
    telegram_mode: Literal["polling", "webhook"] | None = None
    telegram_webhook_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)), validate_default=True
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_base_url: str | None = None
    barrio_timezone: str = "America/Santiago"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    telegram_rate_per_s: float = Field(default=30.0, gt=0)
    telegram_chat_rate_per_s: float = Field(default=1.0, gt=0)
    whatsapp_rate_per_s: float = Field(default=1.0, gt=0)
    # Approved WhatsApp Content templates (HX… SIDs), one per kind of message, each with one
    # variable {{1}} that carries the message; used outside the 24-hour window.
    twilio_template_announcement: str | None = None
    twilio_template_meeting: str | None = None
    twilio_template_reminder: str | None = None
    twilio_template_alert: str | None = None
    twilio_template_call: str | None = None
    # Turns of different people handled at once (one person's turns always run in order).
    telegram_concurrency: int = Field(default=8, ge=1, le=256)
    whatsapp_concurrency: int = Field(default=8, ge=1, le=256)
    alerts_per_hour: int = Field(default=3, ge=1, le=100)
    # Finished outbox rows (who got what) are personal data: kept this long, then deleted.
    delivery_retention_days: int = Field(default=30, ge=1, le=3650)
    # The deployment's administrators (comma-separated): they get what no coordinator can
    # answer, such as a join request to a barrio without one. They need not be members.
    admin_telegram_ids: Annotated[tuple[str, ...], NoDecode] = ()
    admin_whatsapp_numbers: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
            # Only the scheme is shown: the rest may hold the password.
            scheme = GIVEN.format(value=url.split("://")[0] + "://…") if "://" in url else ""
            raise _Refused(BAD_DATABASE_URL + scheme)
        return url

    @field_validator("barrio_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise _Refused(BAD_ZONE + _given(name)) from error
        return name

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, url: str | None) -> str | None:
        return _http_url(url) if url else None

    @field_validator("telegram_api_base_url")
    @classmethod
    def _api_url(cls, url: str) -> str:
        if not url:
            return TELEGRAM_API_BASE_URL
        # PTB's own `base_url` convention ends in /bot; the runtime adds /bot itself, so both
        # spellings of the same server must mean the same.
        return _http_url(url).removesuffix("/bot")

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, secret: SecretStr) -> SecretStr:
        if not WEBHOOK_SECRET.fullmatch(secret.get_secret_value()):
            raise _Refused(BAD_WEBHOOK_SECRET)  # a secret: never shown
        return secret

    @field_validator("admin_telegram_ids", mode="before")
    @classmethod
    def _telegram_ids(cls, given: object) -> tuple[str, ...]:
        ids = _listed(given)
        for user_id in ids:
            if not (user_id.isascii() and user_id.isdigit() and 0 < int(user_id) < MAX_TELEGRAM_ID):
                raise _Refused(BAD_TELEGRAM_IDS.format(item=_shown(user_id)))
        return tuple(dict.fromkeys(str(int(user_id)) for user_id in ids))

    @field_validator("admin_whatsapp_numbers", mode="before")
    @classmethod
    def _whatsapp_numbers(cls, given: object) -> tuple[str, ...]:
        numbers = [n.removeprefix("whatsapp:").replace(" ", "") for n in _listed(given)]
        for number in numbers:
            if not WHATSAPP_NUMBER.fullmatch(number):
                raise _Refused(BAD_WHATSAPP_NUMBERS.format(item=_shown(number)))
        return tuple(dict.fromkeys(numbers))

    @property
    def admins(self) -> tuple[tuple[str, str], ...]:
        """The administrators' addresses, as (channel, external id) like identities."""
        return (
            *(("telegram", user_id) for user_id in self.admin_telegram_ids),
            *(("whatsapp", number) for number in self.admin_whatsapp_numbers),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.barrio_timezone)

    @field_validator(
        "twilio_template_announcement",
        "twilio_template_meeting",
        "twilio_template_reminder",
        "twilio_template_alert",
        "twilio_template_call",
    )
    @classmethod
    def _content_sid(cls, sid: str | None) -> str | None:
        if sid and not CONTENT_SID.fullmatch(sid.strip()):
            raise _Refused(BAD_CONTENT_SID + _given(sid))
        return sid.strip() if sid else None

    @property
    def whatsapp_templates(self) -> dict[str, str]:
        """Template SID by kind of message (a meeting's series invitation counts as one)."""
        by_kind = {
            "announcement": self.twilio_template_announcement,
            "meeting": self.twilio_template_meeting,
            "series": self.twilio_template_meeting,
            "reminder": self.twilio_template_reminder,
            "digest": self.twilio_template_reminder,
            "alert": self.twilio_template_alert,
            "call": self.twilio_template_call,
        }
        return {kind: sid for kind, sid in by_kind.items() if sid}

    @property
    def whatsapp_configured(self) -> bool:
        """Twilio's account, auth token and WhatsApp sender number are all set."""
        return bool(
            self.twilio_account_sid and self.twilio_auth_token and self.twilio_whatsapp_from
        )

    @property
    def effective_telegram_mode(self) -> Literal["polling", "webhook"]:
        if self.telegram_mode is not None:
            return self.telegram_mode
        return "webhook" if self.public_base_url else "polling"

    @property
    def token(self) -> str | None:
        token = self.telegram_bot_token.get_secret_value() if self.telegram_bot_token else ""
        return token.strip() or None


def _listed(given: object) -> list[str]:
    """The items of a comma-separated setting (or of a list given in code), blanks dropped."""
    if given is None:
        return []
    if isinstance(given, str):
        items: Iterable[object] = given.split(",")
    elif isinstance(given, Iterable):
        items = given
    else:
        raise _Refused(BAD_LIST)
    return [text for item in items if (text := str(item).strip())]


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise _Refused(BAD_HTTP_URL + _given(url))
    return url.rstrip("/")


def _shown(value: object) -> str:
    """What was given, as one short line (a pasted value may be long or hold line breaks)."""
    text = " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…"


def _given(value: object) -> str:
    return GIVEN_EMPTY if value == "" else GIVEN.format(value=_shown(value))


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _either(expected: str) -> str | None:
    """pydantic's "'a', 'b' or 'c'" (of a Literal or an Enum) as "a, b o c"."""
    choices: list[str] = re.findall(r"'([^']*)'", expected)
    if not choices:
        return None
    return choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " o " + choices[-1]


def setting_problem(error: ErrorDetails) -> str:
    """One of pydantic's errors about a setting, in Spanish on one line: never its English
    `msg`, never the value of a secret setting."""
    field = str(error["loc"][0]) if error["loc"] else ""
    name = field.upper() or WHOLE_CONFIGURATION
    context = dict(error.get("ctx") or {})
    ours = context.get("error")
    if error["type"] == "value_error" and isinstance(ours, _Refused):
        return f"{name} {ours}"
    fields = {key: _number(value) for key, value in context.items()}
    template = PROBLEMS.get(error["type"], PROBLEM_UNKNOWN)
    if "expected" in context:
        expected = _either(str(context["expected"]))
        fields["expected"] = expected or ""
        template = template if expected else PROBLEM_UNKNOWN
    try:
        said = template.format(**fields, name=name)
    except (KeyError, IndexError, ValueError):  # a ctx this pydantic does not give
        said = PROBLEM_UNKNOWN.format(name=name)
    if error["type"] == "missing" or field in SECRET_SETTINGS or not field:
        return said
    return said + _given(error["input"])


def load_settings(**overrides: object) -> Settings:
    """Read the settings or raise `SettingsError` with one line naming the bad variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(setting_problem(error.errors()[0])) from None
    except UnicodeDecodeError as error:
        # The .env file (the environment itself cannot fail to decode); its text is not
        # shown, it may hold the token.
        line = bytes(error.object[: error.start]).count(b"\n") + 1
        raise SettingsError(ENV_FILE_NOT_UTF8.format(line=line)) from None
    if settings.telegram_mode == "webhook" and not settings.public_base_url:
        raise SettingsError(WEBHOOK_WITHOUT_URL)
    return settings
