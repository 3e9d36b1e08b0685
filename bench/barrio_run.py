"""`barrio run`, telling standard output when its reminder loop is ready and what it fires.

For `reminders_10k` (bench/reminders.py): the real command (`bot.cli.main`, settings from the
environment), plus one hook on the reminder loop. Lines, times as Unix seconds:
`started T` (first line of Python run, after the interpreter started), `loop T` (the reminder
loop begins its first pass), `ready T` (`ReminderLoop.ready`), `fired DUE WRITTEN` per reminder
(`ReminderLoop.on_fired`: its due time and when its outbox rows were committed). Logs go to
standard error as usual.
"""

from __future__ import annotations

import time

STARTED = time.time()

import asyncio  # noqa: E402
import sys  # noqa: E402
from datetime import datetime  # noqa: E402

from bot import cli  # noqa: E402
from scheduler.reminders import ReminderLoop  # noqa: E402

_run = ReminderLoop.run
_tasks: set[asyncio.Task[None]] = set()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _fired(due: datetime, written: datetime) -> None:
    _say(f"fired {due.timestamp()} {written.timestamp()}")


async def _announce_ready(loop: ReminderLoop) -> None:
    await loop.ready.wait()
    _say(f"ready {time.time()}")


async def _instrumented_run(self: ReminderLoop) -> None:
    _say(f"loop {time.time()}")
    self.on_fired = _fired
    task = asyncio.create_task(_announce_ready(self))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    await _run(self)


if __name__ == "__main__":
    _say(f"started {STARTED}")
    ReminderLoop.run = _instrumented_run  # type: ignore[method-assign]
    cli.main(["run"])
