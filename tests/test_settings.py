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
    assert message.startswith("TELEGRAM_WEBHOOK_SECRET debe tener de 1 a 256 caracteres")
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


# --- what the operator reads when a setting is refused ------------------------------------

# pydantic's own English, which must never reach the person who runs the deployment.
ENGLISH = ("Input should", "Value error", "Field required", "validation error", "must ", " use ")

HEX32 = "0123456789abcdef" * 2
REFUSED = [
    ("PORT", "many", "PORT debe ser un número entero (llegó «many»)"),
    ("PORT", "1.5", "PORT debe ser un número entero (llegó «1.5»)"),
    ("PORT", "", "PORT debe ser un número entero (está vacía)"),
    ("PORT", "70000", "PORT debe ser 65535 o menos (llegó «70000»)"),
    ("ALERTS_PER_HOUR", "tres", "ALERTS_PER_HOUR debe ser un número entero (llegó «tres»)"),
    ("ALERTS_PER_HOUR", "0", "ALERTS_PER_HOUR debe ser 1 o más (llegó «0»)"),
    ("TELEGRAM_CONCURRENCY", "300", "TELEGRAM_CONCURRENCY debe ser 256 o menos (llegó «300»)"),
    (
        "TELEGRAM_RATE_PER_S",
        "1,5",
        "TELEGRAM_RATE_PER_S debe ser un número, con punto decimal como 0.5 (llegó «1,5»)",
    ),
    ("TELEGRAM_CHAT_RATE_PER_S", "0", "TELEGRAM_CHAT_RATE_PER_S debe ser mayor que 0 (llegó «0»)"),
    ("TELEGRAM_MODE", "hook", "TELEGRAM_MODE debe ser polling o webhook (llegó «hook»)"),
    (
        "DATABASE_URL",
        "mysql://barrio:clave-secreta@db.example/barrio",
        "DATABASE_URL debe ser sqlite+aiosqlite:///ARCHIVO o postgresql+asyncpg://SERVIDOR/BASE "
        "(llegó «mysql://…»)",
    ),
    (
        "DATABASE_URL",
        "barrio.sqlite3",
        "DATABASE_URL debe ser sqlite+aiosqlite:///ARCHIVO o postgresql+asyncpg://SERVIDOR/BASE",
    ),
    (
        "BARRIO_TIMEZONE",
        "Chile/Rancagua",
        "BARRIO_TIMEZONE debe ser una zona horaria como America/Santiago o America/Punta_Arenas "
        "(llegó «Chile/Rancagua»)",
    ),
    (
        "PUBLIC_BASE_URL",
        "bot.example.cl",
        "PUBLIC_BASE_URL debe empezar con https:// o http:// (llegó «bot.example.cl»)",
    ),
    (
        "TELEGRAM_API_BASE_URL",
        "localhost:8081",
        "TELEGRAM_API_BASE_URL debe empezar con https:// o http:// (llegó «localhost:8081»)",
    ),
    (
        "TWILIO_TEMPLATE_ALERT",
        "HX123",
        "TWILIO_TEMPLATE_ALERT debe ser un Content SID de Twilio: HX y 32 dígitos hexadecimales "
        "(llegó «HX123»)",
    ),
    (
        "ADMIN_TELEGRAM_IDS",
        "123,ana",
        "ADMIN_TELEGRAM_IDS debe llevar ids de Telegram separados por comas, como "
        "123456789,987654321 («ana» no es uno)",
    ),
    (
        "ADMIN_WHATSAPP_NUMBERS",
        "912345678",
        "ADMIN_WHATSAPP_NUMBERS debe llevar números de WhatsApp separados por comas, como "
        "+56912345678,+56987654321 («912345678» no es uno)",
    ),
    (
        "TELEGRAM_WEBHOOK_SECRET",
        "dos palabras",
        "TELEGRAM_WEBHOOK_SECRET debe tener de 1 a 256 caracteres entre A-Z, a-z, 0-9, _ y - "
        "(sin espacios ni tildes)",
    ),
]


def assert_spanish_line(message: str) -> None:
    assert "\n" not in message and message.strip() == message, message
    for english in ENGLISH:
        assert english not in message, message


@pytest.mark.parametrize(
    ("variable", "value", "said"), REFUSED, ids=[f"{v}={x[:14]}" for v, x, _ in REFUSED]
)
def test_a_refused_setting_is_said_in_spanish_on_one_line(
    monkeypatch, tmp_path, variable, value, said
):
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert message == said
    assert_spanish_line(message)


def test_a_database_url_is_never_echoed(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "mysql://barrio:clave-secreta@db.example/barrio")
    with pytest.raises(SettingsError) as error:
        load_settings()
    for part in ("clave-secreta", "barrio:", "db.example"):
        assert part not in str(error.value)


def test_webhook_mode_without_a_public_address_is_said_in_spanish(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("TELEGRAM_MODE", "webhook")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == (
        "TELEGRAM_MODE=webhook necesita PUBLIC_BASE_URL, la dirección pública del bot "
        "(por ejemplo https://bot.ejemplo.cl)"
    )


@pytest.mark.parametrize(
    "name", ["telegram_bot_token", "twilio_auth_token", "telegram_webhook_secret"]
)
def test_a_secret_setting_of_the_wrong_kind_is_named_but_never_shown(name):
    with pytest.raises(SettingsError) as error:
        load_settings(**{name: 987654321})
    message = str(error.value)
    assert message == f"{name.upper()} debe ser un texto"
    assert "987654321" not in message


def test_a_bad_env_file_is_said_in_spanish(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"PORT=8080\nTELEGRAM_BOT_TOKEN=123:\xff\xfesecret\n")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert message == (
        "no pude leer el archivo .env: su línea 2 no está en UTF-8 (guárdalo con esa codificación)"
    )
    assert "secret" not in message


# pydantic's error types the fields cannot raise from the environment today (a field added
# tomorrow might), each said in Spanish, naming the variable as the operator writes it.
BUILT_IN = [
    ({"type": "missing", "loc": ("telegram_bot_token",), "input": {}}, "falta TELEGRAM_BOT_TOKEN"),
    (
        {"type": "bool_parsing", "loc": ("public_mode",), "input": "quizás"},
        "PUBLIC_MODE debe ser true o false (llegó «quizás»)",
    ),
    (
        {"type": "float_parsing", "loc": ("whatsapp_rate_per_s",), "input": "uno"},
        "WHATSAPP_RATE_PER_S debe ser un número, con punto decimal como 0.5 (llegó «uno»)",
    ),
    (
        {"type": "less_than", "loc": ("port",), "input": 9, "ctx": {"lt": 5}},
        "PORT debe ser menor que 5 (llegó «9»)",
    ),
    (
        {"type": "greater_than_equal", "loc": ("port",), "input": -1, "ctx": {"ge": 0}},
        "PORT debe ser 0 o más (llegó «-1»)",
    ),
    (
        {"type": "string_too_long", "loc": ("host",), "input": "h" * 80, "ctx": {"max_length": 64}},
        f"HOST debe tener hasta 64 caracteres (llegó «{'h' * 40}…»)",
    ),
    (
        {"type": "url_parsing", "loc": ("public_base_url",), "input": "::", "ctx": {"error": "x"}},
        "PUBLIC_BASE_URL debe ser una dirección web como https://bot.ejemplo.cl (llegó «::»)",
    ),
    (
        {
            "type": "enum",
            "loc": ("level",),
            "input": "x",
            "ctx": {"expected": "'bajo', 'medio' or 'alto'"},
        },
        "LEVEL debe ser bajo, medio o alto (llegó «x»)",
    ),
    (
        {"type": "json_invalid", "loc": ("extra",), "input": "{", "ctx": {"error": "EOF"}},
        "EXTRA debe ser JSON válido (llegó «{»)",
    ),
    (
        {"type": "value_error", "loc": ("host",), "input": "x", "ctx": {"error": ValueError("no")}},
        "HOST no tiene un valor válido (llegó «x»)",
    ),
    (
        {"type": "some_future_type", "loc": ("host",), "input": "a\nb"},
        "HOST no tiene un valor válido (llegó «a b»)",
    ),
    (
        {"type": "some_future_type", "loc": ("twilio_auth_token",), "input": "s3cr3t"},
        "TWILIO_AUTH_TOKEN no tiene un valor válido",
    ),
    ({"type": "model_type", "loc": (), "input": 1}, "la configuración no tiene un valor válido"),
]


@pytest.mark.parametrize(
    ("error", "said"), BUILT_IN, ids=[f"{e['type']}-{'-'.join(e['loc'])}" for e, _ in BUILT_IN]
)
def test_pydantics_error_types_are_said_in_spanish(error, said):
    from bot.settings import setting_problem

    message = setting_problem({"msg": "Input should be English", **error})
    assert message == said
    assert_spanish_line(message)
