"""Stopping: SIGTERM and SIGINT run the whole orderly stop; a bot whose web server (or poller,
or outbox) ends by itself stops too instead of running headless."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from bot.runtime import BackgroundTaskEnded, Runtime
from tests.support import TOKEN, WAIT_S, free_port


def _read(log: Path) -> str:
    return log.read_text()


async def _healthy(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    """Until /healthz answers 200; fails at once if the bot exits first."""
    deadline = asyncio.get_running_loop().time() + 30
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            if process.returncode is not None:
                raise AssertionError(f"barrio run exited early: {_read(log)}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"/healthz never answered: {_read(log)}")
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("sig", "ignored_by_default"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
    # As PID 1 in a container, a signal without a handler does nothing; a process started
    # with SIGTERM ignored is in the same place, and there uvicorn's re-raise used to leave
    # the bot running without its web server.
    ids=["SIGTERM", "SIGINT", "SIGTERM-as-PID-1"],
)
async def test_a_stop_signal_stops_the_whole_bot_and_exits_0(
    emulator, tmp_path, sig, ignored_by_default
):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": emulator.base_url,
        "TELEGRAM_MODE": "polling",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    env.pop("PUBLIC_BASE_URL", None)
    log = tmp_path / "barrio.log"
    with log.open("wb") as output:  # a file, not a pipe: nobody has to drain it meanwhile
        script = str(Path(sys.executable).parent / "barrio")
        # `exec` keeps the pid, and an ignored signal stays ignored across it.
        command = ["sh", "-c", 'trap "" TERM; exec "$0" run', script]
        process = await asyncio.create_subprocess_exec(
            *(command if ignored_by_default else [script, "run"]),
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=output,
        )
    try:
        await _healthy(process, f"http://127.0.0.1:{port}/healthz", log)
        process.send_signal(sig)
        code = await asyncio.wait_for(process.wait(), WAIT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    written = _read(log)
    assert code == 0, written
    assert f"{sig.name} received; stopping" in written
    # Logged only after Runtime.stop() has run to its end.
    assert "bot.runtime: Barrio Conecta stopped" in written
    assert "Traceback" not in written


async def _running(settings) -> tuple[Runtime, asyncio.Task[None]]:
    runtime = Runtime(settings)
    task = asyncio.create_task(runtime.run_forever())
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while runtime.web_port is None or runtime._poller_task is None:
        assert not task.done(), task
        assert asyncio.get_running_loop().time() < deadline, "the bot never started"
        await asyncio.sleep(0.01)
    return runtime, task


def _stopped_in_order(runtime: Runtime) -> None:
    assert not runtime.application.running
    assert not runtime.scheduler.running
    assert all(task.done() for task in runtime._tasks)
    assert runtime._poller_task is None or runtime._poller_task.done()


async def test_a_web_server_that_ends_by_itself_stops_the_bot(settings):
    runtime, task = await _running(settings)
    assert runtime._web is not None
    runtime._web.should_exit = True  # as when uvicorn ends its main loop by itself
    with pytest.raises(BackgroundTaskEnded, match="el servidor web se detuvo por su cuenta"):
        await asyncio.wait_for(task, WAIT_S)
    _stopped_in_order(runtime)


async def test_a_web_server_that_fails_stops_the_bot_in_one_line(settings, caplog):
    runtime, task = await _running(settings)
    assert runtime._web is not None

    async def broken_tick(_counter: int) -> bool:
        raise RuntimeError("selector gone")

    runtime._web.on_tick = broken_tick  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        with pytest.raises(BackgroundTaskEnded) as ended:
            await asyncio.wait_for(task, WAIT_S)
    assert str(ended.value) == (
        "el servidor web falló (RuntimeError: selector gone); el bot se detuvo también"
    )
    _stopped_in_order(runtime)
    # The reason is said once, by whoever catches the exception: no traceback from stop().
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_barrio_run_exits_1_in_one_line_when_the_web_server_ends(monkeypatch, capsys, tmp_path):
    from bot import cli

    async def web_server_ended(_self: Runtime) -> None:
        raise BackgroundTaskEnded(f"el servidor web se detuvo por su cuenta ({TOKEN})")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setattr(Runtime, "run_forever", web_server_ended)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run"])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("barrio: el servidor web se detuvo por su cuenta")
    assert error.count("\n") == 1 and TOKEN not in error


async def test_a_stop_signal_during_a_slow_start_stops_without_finishing_it(settings, monkeypatch):
    from models import db

    migrating = asyncio.Event()

    async def slow_upgrade(_engine) -> None:
        migrating.set()
        await asyncio.Event().wait()  # a migration waiting on a lock, say

    monkeypatch.setattr(db, "upgrade", slow_upgrade)
    before = signal.getsignal(signal.SIGTERM)
    runtime = Runtime(settings)
    task = asyncio.create_task(runtime.run_forever())
    await asyncio.wait_for(migrating.wait(), WAIT_S)
    # Only now is it safe to signal this very process: run_forever has its handler in place.
    assert signal.getsignal(signal.SIGTERM) is not before
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(task, WAIT_S)  # returns: a stop asked for is not a failure
    assert not runtime.application.running and runtime.dispatcher is None
    assert signal.getsignal(signal.SIGTERM) == before  # the caller's handler is back
