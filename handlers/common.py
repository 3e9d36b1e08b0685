"""Small pieces every feature uses: menus, guards and validated text input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers import texts
from handlers.core import InboundKind, Option, Turn, clean_line, has_letters, words_of
from models import Barrio, Member, Membership, MembershipStatus, Role


def active_memberships(member: Member) -> list[Membership]:
    return [m for m in member.memberships if m.status == MembershipStatus.ACTIVE]


def coordinated_barrios(member: Member | None) -> list[Barrio]:
    if member is None:
        return []
    return [m.barrio for m in active_memberships(member) if m.role == Role.COORDINATOR]


def main_menu(member: Member | None) -> list[Option]:
    if member is None:
        return [Option(texts.MENU_REGISTER, "menu:registro"), Option(texts.MENU_HELP, "menu:ayuda")]
    options = [Option(texts.MENU_BARRIO, "menu:barrio")]
    if active_memberships(member):
        # Waiting for approval, the directory would only answer "when you are approved".
        options.append(Option(texts.MENU_DIRECTORY, "menu:directorio"))
    options.append(Option(texts.MENU_PROFILE, "menu:perfil"))
    if coordinated_barrios(member):
        # What coordinating is, as buttons: payloads are the commands' names (`menu:reunion`
        # runs `/reunion`). With the member's four, nine lines: one screen on WhatsApp too.
        options += [
            Option(texts.MENU_MEMBERS, "menu:miembros"),
            Option(texts.MENU_ANNOUNCE, "menu:anuncio"),
            Option(texts.MENU_MEETING, "menu:reunion"),
            Option(texts.MENU_ATTENDANCE, "menu:asistencia"),
            Option(texts.MENU_CALL, "menu:convocatoria"),
        ]
    options.append(Option(texts.MENU_HELP, "menu:ayuda"))
    return options


def say_menu(turn: Turn, text: str = texts.MENU_PROMPT) -> None:
    turn.say(text, main_menu(turn.member))


def require_member(turn: Turn) -> Member | None:
    if turn.member is None:
        turn.say(texts.NOT_REGISTERED, main_menu(None))
    return turn.member


# The button that takes someone registered but in no barrio (turned down, or gone) to the
# registration's barrio list (`handlers/registration.py` `ask_another_barrio`).
ASK_ANOTHER_BARRIO = "reg:otro"


def without_barrio(member: Member) -> bool:
    """Registered, but neither in a barrio nor waiting for one: every request was turned
    down, or they left."""
    current = (MembershipStatus.ACTIVE, MembershipStatus.PENDING)
    return not any(m.status in current for m in member.memberships)


def require_active(turn: Turn) -> Member | None:
    member = require_member(turn)
    if member is None or active_memberships(member):
        return member
    if not without_barrio(member):
        turn.say(texts.NOT_ACTIVE, main_menu(member))
        return None
    say_without_barrio(turn, member)
    return None


def say_without_barrio(turn: Turn, member: Member, what: str = texts.THIS_FEATURE) -> None:
    """Why `what` is closed to someone in no barrio (turned down, or gone), and the way back
    into one."""
    rejected = [m.barrio.name for m in member.memberships if m.status == MembershipStatus.REJECTED]
    if rejected:
        turn.say(
            texts.NOT_ACTIVE_REJECTED.format(what=what, barrios=and_list(rejected)),
            [
                Option(texts.ASK_OTHER_BARRIO, ASK_ANOTHER_BARRIO),
                Option(texts.MENU_BARRIO, "menu:barrio"),
            ],
        )
    else:
        turn.say(
            texts.NOT_ACTIVE_NO_BARRIO.format(what=what),
            [Option(texts.ASK_A_BARRIO, ASK_ANOTHER_BARRIO)],
        )


def and_list(names: list[str], last: str = texts.AND) -> str:
    """Names as Spanish joins them: "A", "A y B", "A, B y C" (or "A, B o C")."""
    return ", ".join(names[:-1]) + last + names[-1] if len(names) > 1 else "".join(names)


def require_coordinator(turn: Turn) -> list[Barrio]:
    barrios = coordinated_barrios(turn.member)
    if not barrios:
        turn.say(texts.COORDINATORS_ONLY, main_menu(turn.member))
    return barrios


def read_text(turn: Turn, *, min_length: int = 2, max_length: int = 60) -> str | None:
    """The text if usable as a short answer; otherwise say why and return None."""
    inbound = turn.inbound
    if inbound.kind in (InboundKind.MEDIA, InboundKind.LOCATION):
        turn.say(texts.TEXT_NEEDED)
        return None
    value = clean_line(inbound.text)
    if len(value) > max_length:
        turn.say(texts.TOO_LONG.format(limit=max_length))
        return None
    if len(value) < min_length:
        turn.say(texts.TOO_SHORT.format(limit=min_length))
        return None
    if not has_letters(value):
        turn.say(texts.LETTERS_NEEDED)
        return None
    if words_of(value) in NOT_AN_ANSWER:
        turn.say(texts.NOT_AN_ANSWER.format(value=value))
        return None
    return value


# Said to the bot, not the answer asked for: "hola" is nobody's name, "volver" no business.
NOT_AN_ANSWER = frozenset(
    {
        "hola",
        "ola",
        "buenas",
        "buenos dias",
        "buenas tardes",
        "buenas noches",
        "si",
        "no",
        "ok",
        "okay",
        "dale",
        "listo",
        "gracias",
        "volver",
        "atras",
        "salir",
        "inicio",
    }
)


async def take_text(
    turn: Turn,
    key: str,
    next_step: str,
    prompt: Callable[[Turn], Awaitable[None]],
    *,
    min_length: int = 3,
    max_length: int = 80,
) -> None:
    """A flow step that asks for one short text: keep it under `key` and ask the next
    question, or say what was wrong and keep asking."""
    value = read_text(turn, min_length=min_length, max_length=max_length)
    if value is not None:
        turn.goto(next_step, **{key: value})
        await prompt(turn)


def category_label(key: str) -> str:
    return texts.BUSINESS_CATEGORIES.get(key, texts.BUSINESS_CATEGORIES["otro"])


def category_options(prefix: str) -> list[Option]:
    return [Option(label, f"{prefix}:{key}") for key, label in texts.BUSINESS_CATEGORIES.items()]
