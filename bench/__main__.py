"""Run every benchmark; figures go to standard output as JSON lines, progress to standard error."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from bench import inbound, outbox


async def main() -> None:
    databases = ["sqlite"]
    if (
        os.environ.get("BENCH_POSTGRES_URL", inbound.DEFAULT_POSTGRES_URL)
        and await inbound.postgres_answers()
    ):
        databases.append("postgresql")
    for database in databases:
        for bench in (inbound.run, outbox.broadcast_10k, outbox.alert_200):
            result = await bench(database)
            print(json.dumps(result), flush=True)
            print(f"  {result}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
