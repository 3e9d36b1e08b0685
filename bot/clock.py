"""A clock that runs at real speed from a chosen moment: the demo lives at noon in Santiago
(so quiet hours never hide its notices), and tests get the same day on every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ShiftedClock:
    def __init__(self, start: datetime = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)) -> None:
        self.offset = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
