"""`/directorio [texto]`: find the other businesses of one's own barrios, by rubro or by name.

Only members active in a barrio the searcher is active in, and only what each agreed to show.
Matching is accent-insensitive and done in SQL against `Member.search_text`, the same way on
SQLite and PostgreSQL. `/directorio` alone shows a small directory whole and offers a big one
by rubro or page by page (the page rides in the button, so it outlives a restart); words typed
at its menu are a search (dialogue.py `SEARCH_MENUS`).
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers import texts
from handlers.common import active_memberships, category_label, require_active
from handlers.core import MAX_ID, Option, Turn, clean_line, fold, parse_id
from models import Member, queries
from models.queries import DirectoryEntry

MAX_RESULTS = 25
# Up to this many listed, `/directorio` shows them all at once: a glance beats a question.
SMALL_DIRECTORY = 10
PAGE_SIZE = 10


async def search(turn: Turn, args: str) -> None:
    member = require_active(turn)
    if member is None:
        return
    query = clean_line(args)[:60]
    if not query:
        await _overview(turn, member)
        return
    # Split on spaces, not on every sign: "100%" or "a_b" are looked for as typed.
    words = [word for word in (w.strip(_AROUND) for w in fold(query).split()) if word]
    words = [word for word in words if word not in SEARCH_FILLERS]
    wanted = " ".join(words) or fold(query)
    found = await _visible_to(turn, member, text=wanted, categories=_rubros_with(wanted))
    if not found[0] and len(words) > 1:
        # "pan amasado": each word on its own, the most telling (longest) first.
        for word in sorted((w for w in words if len(w) >= 3), key=len, reverse=True):
            found = await _visible_to(turn, member, text=word, categories=_rubros_with(word))
            if found[0]:
                break
    if not found[0]:
        turn.say(texts.DIRECTORY_NONE.format(query=query), await _rubro_options(turn, member))
        return
    _say_results(turn, query, *found)


_AROUND = "¿?¡!.,;:«»\"'()"
# Words around what is looked for ("quiero pan", "¿dónde hay una ferretería?"), not part of it.
SEARCH_FILLERS = frozenset(
    {
        "quiero",
        "busco",
        "buscar",
        "necesito",
        "donde",
        "hay",
        "alguien",
        "que",
        "venda",
        "vende",
        "venden",
        "un",
        "una",
        "unos",
        "unas",
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "comprar",
        "compro",
        "algun",
        "alguna",
        "en",
        "por",
        "favor",
        "me",
        "para",
    }
)


def _rubros_with(wanted: str) -> list[str]:
    return [key for key, label in texts.BUSINESS_CATEGORIES.items() if wanted in fold(label)]


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    """`dir:cat:<rubro>`: the members of one rubro; `dir:all:<page>`: everyone, a page."""
    page = parse_id(arg) if action == "all" else None
    if page == 0:  # pages count from 1: a forged 0 would be a negative OFFSET
        page = None
    if page is None and (action != "cat" or arg not in texts.BUSINESS_CATEGORIES):
        turn.say(texts.INVALID_BUTTON)
        return True
    member = require_active(turn)
    if member is None:
        return True
    if page is not None:
        await _say_page(turn, member, page)
    else:
        found = await _visible_to(turn, member, categories=[arg])
        if not found[0]:
            # Its people have gone since the button was sent: the rubros there are now.
            empty = texts.DIRECTORY_RUBRO_EMPTY.format(rubro=category_label(arg))
            turn.say(empty, await _rubro_options(turn, member))
            return True
        _say_results(turn, category_label(arg), *found)
    return True


async def _overview(turn: Turn, member: Member) -> None:
    total, listed = await _visible_to(turn, member, limit=SMALL_DIRECTORY)
    if not total:
        turn.say(texts.DIRECTORY_EMPTY)
    elif total <= SMALL_DIRECTORY:
        present = {entry.business_category for entry in listed}
        rubros = [
            Option(label, f"dir:cat:{key}")
            for key, label in texts.BUSINESS_CATEGORIES.items()
            if key in present
        ]
        lines = [texts.DIRECTORY_EVERYONE.format(count=total), *map(_entry, listed)]
        turn.say("\n".join([*lines, "", texts.DIRECTORY_NARROW]), rubros)
    else:
        everyone = Option(texts.DIRECTORY_ALL.format(count=total), "dir:all:1")
        turn.say(
            texts.DIRECTORY_ASK.format(count=total), [*await _rubro_options(turn, member), everyone]
        )


async def _rubro_options(turn: Turn, member: Member) -> list[Option]:
    """A button for each rubro someone listed has: one that finds nobody is a dead end."""
    barrio_ids = [m.barrio_id for m in active_memberships(member)]
    present = await queries.directory_rubros(turn.session, barrio_ids, member.id)
    return [
        Option(label, f"dir:cat:{key}")
        for key, label in texts.BUSINESS_CATEGORIES.items()
        if key in present
    ]


async def _say_page(turn: Turn, member: Member, page: int) -> None:
    skipped = (page - 1) * PAGE_SIZE
    # A forged page past any real one must not overflow the database's integers.
    offset = min(skipped, MAX_ID)
    total, listed = await _visible_to(turn, member, limit=PAGE_SIZE, offset=offset)
    if not listed:
        # The directory shrank since the button was sent (someone left or hid themselves).
        turn.say(texts.DIRECTORY_PAGE_GONE)
        await _overview(turn, member)
        return
    shown = skipped + len(listed)
    header = texts.DIRECTORY_PAGE.format(first=skipped + 1, last=shown, count=total)
    more = [Option(texts.DIRECTORY_NEXT, f"dir:all:{page + 1}")] if shown < total else []
    turn.say("\n".join([header, *map(_entry, listed)]), more)


async def _visible_to(
    turn: Turn,
    member: Member,
    *,
    text: str | None = None,
    categories: Sequence[str] = (),
    limit: int = MAX_RESULTS,
    offset: int = 0,
) -> tuple[int, list[DirectoryEntry]]:
    barrio_ids = [m.barrio_id for m in active_memberships(member)]
    return await queries.directory_members(
        turn.session,
        barrio_ids,
        member.id,
        text=text,
        categories=categories,
        limit=limit,
        offset=offset,
    )


def _say_results(turn: Turn, query: str, total: int, found: Sequence[DirectoryEntry]) -> None:
    lines = [texts.DIRECTORY_HEADER.format(count=total, query=query)]
    lines += [_entry(m) for m in found]
    if total > len(found):
        lines.append(texts.DIRECTORY_MORE.format(count=total - len(found)))
    turn.say("\n".join(lines))


def _entry(listed: DirectoryEntry) -> str:
    entry = texts.DIRECTORY_LINE.format(
        business=listed.business_name,
        name=listed.name,
        category=category_label(listed.business_category),
    )
    if listed.phone:
        entry += texts.DIRECTORY_PHONE.format(phone=listed.phone)
    if listed.address:
        entry += texts.DIRECTORY_ADDRESS.format(address=listed.address)
    return entry
