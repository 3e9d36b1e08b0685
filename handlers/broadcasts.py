"""What happens when every message of a broadcast has reached a final state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import announcements


class BroadcastReports:
    """The dispatcher's `on_broadcast_done`: routes "announcement:12" to its report."""

    def __init__(self, clock: Callable[[], datetime], zone: ZoneInfo) -> None:
        self.clock = clock
        self.zone = zone

    async def __call__(self, session: AsyncSession, broadcast: str, counts: dict[str, int]) -> None:
        kind, _, key = broadcast.partition(":")
        if kind == "announcement" and key.isdigit():
            await announcements.report_done(session, int(key), counts, self.clock(), self.zone)
