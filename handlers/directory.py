"""`/directorio [texto]`: find the other businesses of one's own barrios, by rubro or by name.

Only members active in a barrio the searcher is active in, and only what each agreed to show.
Matching is accent-insensitive and done in SQL against `Member.search_text`, the same way on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers import texts
from handlers.common import active_memberships, category_label, category_options, require_active
from handlers.core import Turn, clean_line, fold
from models import Member, queries
from models.queries import DirectoryEntry

MAX_RESULTS = 25


async def search(turn: Turn, args: str) -> None:
    member = require_active(turn)
    if member is None:
        return
    query = clean_line(args)[:60]
    if not query:
        turn.say(texts.DIRECTORY_ASK, category_options("dir:cat"))
        return
    wanted = fold(query)
    categories = [key for key, label in texts.BUSINESS_CATEGORIES.items() if wanted in fold(label)]
    _say_results(turn, query, *await _visible_to(turn, member, text=wanted, categories=categories))


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    """`dir:cat:<rubro>`: the members of one rubro."""
    if action != "cat" or arg not in texts.BUSINESS_CATEGORIES:
        turn.say(texts.INVALID_BUTTON)
        return True
    member = require_active(turn)
    if member is not None:
        found = await _visible_to(turn, member, categories=[arg])
        _say_results(turn, category_label(arg), *found)
    return True


async def _visible_to(
    turn: Turn, member: Member, *, text: str | None = None, categories: Sequence[str] = ()
) -> tuple[int, list[DirectoryEntry]]:
    barrio_ids = [m.barrio_id for m in active_memberships(member)]
    return await queries.directory_members(
        turn.session, barrio_ids, member.id, text=text, categories=categories, limit=MAX_RESULTS
    )


def _say_results(turn: Turn, query: str, total: int, found: Sequence[DirectoryEntry]) -> None:
    if not found:
        turn.say(texts.DIRECTORY_NONE.format(query=query))
        return
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
