"""`/directorio [texto]`: find the other businesses of one's own barrios, by rubro or by name.

Only members active in a barrio the searcher is active in, and only what each agreed to show.
A barrio has tens to a few hundred members, so matching happens in Python, accent-insensitive,
the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

from handlers import texts
from handlers.common import active_memberships, category_label, category_options, require_active
from handlers.core import Turn, clean_line, fold
from models import Member, queries

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
    categories = {key for key, label in texts.BUSINESS_CATEGORIES.items() if wanted in fold(label)}
    found = [
        m
        for m in await _visible_to(turn, member)
        if m.business_category in categories
        or wanted in fold(m.name)
        or wanted in fold(m.business_name)
    ]
    _say_results(turn, query, found)


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    """`dir:cat:<rubro>`: the members of one rubro."""
    if action != "cat" or arg not in texts.BUSINESS_CATEGORIES:
        turn.say(texts.INVALID_BUTTON)
        return True
    member = require_active(turn)
    if member is not None:
        found = [m for m in await _visible_to(turn, member) if m.business_category == arg]
        _say_results(turn, category_label(arg), found)
    return True


async def _visible_to(turn: Turn, member: Member) -> list[Member]:
    barrio_ids = [m.barrio_id for m in active_memberships(member)]
    return list(await queries.directory_members(turn.session, barrio_ids, member.id))


def _say_results(turn: Turn, query: str, found: list[Member]) -> None:
    if not found:
        turn.say(texts.DIRECTORY_NONE.format(query=query))
        return
    lines = [texts.DIRECTORY_HEADER.format(count=len(found), query=query)]
    lines += [_entry(m) for m in found[:MAX_RESULTS]]
    if len(found) > MAX_RESULTS:
        lines.append(texts.DIRECTORY_MORE.format(count=len(found) - MAX_RESULTS))
    turn.say("\n".join(lines))


def _entry(member: Member) -> str:
    entry = texts.DIRECTORY_LINE.format(
        business=member.business_name,
        name=member.name,
        category=category_label(member.business_category),
    )
    if member.show_phone and member.phone:
        entry += texts.DIRECTORY_PHONE.format(phone=member.phone)
    if member.show_address and member.address:
        entry += texts.DIRECTORY_ADDRESS.format(address=member.address)
    return entry
