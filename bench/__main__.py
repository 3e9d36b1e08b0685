"""Run every benchmark; figures go to standard output as JSON lines, progress to standard error.

`BENCH_ONLY=broadcast_10k,alert_200` runs only the named ones; `BENCH_POSTGRES_URL=` (empty)
skips PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bench import inbound, outbox, reminders, whatsapp

BENCHES: dict[str, Callable[[str], Awaitable[dict[str, Any]]]] = {
    "inbound_updates": inbound.run,
    "broadcast_10k": outbox.broadcast_10k,
    "alert_200": outbox.alert_200,
    "alert_200_flood": outbox.alert_200_flood,
    "reminders_10k": reminders.reminders_10k,
    "whatsapp_webhook": whatsapp.whatsapp_webhook,
    "broadcast_10k_whatsapp": whatsapp.broadcast_10k_whatsapp,
}


async def main() -> None:
    only = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
    unknown = only - set(BENCHES)
    if unknown:
        raise SystemExit(
            f"BENCH_ONLY: unknown {', '.join(sorted(unknown))}; use {', '.join(BENCHES)}"
        )
    databases = ["sqlite"]
    if (
        os.environ.get("BENCH_POSTGRES_URL", inbound.DEFAULT_POSTGRES_URL)
        and await inbound.postgres_answers()
    ):
        databases.append("postgresql")
    for database in databases:
        for name, bench in BENCHES.items():
            if only and name not in only:
                continue
            result = await bench(database)
            print(json.dumps(result), flush=True)
            print(f"  {result}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
