"""Local emulator of the Telegram Bot API, served over HTTP for tests, demos and benchmarks.

The real python-telegram-bot library talks to it unchanged:

    emulator = TelegramEmulator(token="123456:TEST-TOKEN")
    async with serve_emulator(emulator) as base_url:
        app = ApplicationBuilder().token(emulator.token).base_url(api_base_url(base_url)).build()

Bot API calls go to `/bot<token>/<method>` (GET or POST; form, multipart, JSON or query
string). The simulated people and the inspection of what the bot sent are available both as
Python methods (see `EmulatorState`) and as JSON routes under `/control/` for processes that
only have HTTP. Run standalone with:

    python -m bot.emulator.telegram --host 127.0.0.1 --port 8081 --token 123456:TEST-TOKEN
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.message
import functools
import inspect
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.emulator.telegram_state import (
    ApiError,
    EmulatorState,
    JSONDict,
    UploadedFile,
    WebhookConfig,
    bad_request,
)

__all__ = [
    "ApiError",
    "BotApiApp",
    "EmulatorServer",
    "TelegramEmulator",
    "api_base_url",
    "file_base_url",
    "main",
    "parse_params",
    "serve_asgi",
    "serve_emulator",
]


def api_base_url(base: str) -> str:
    """PTB's `base_url` for a served emulator: PTB appends the token to it."""
    return base.rstrip("/") + "/bot"


def file_base_url(base: str) -> str:
    """PTB's `base_file_url` for a served emulator."""
    return base.rstrip("/") + "/file/bot"


class TelegramEmulator(EmulatorState):
    """The emulator: Bot API semantics from `EmulatorState`, plus its ASGI app and webhook
    delivery. `serve_emulator` closes it on exit; otherwise call `aclose()` when done if a
    webhook was set (after it, waits and long polls return at once)."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_id: int = 123456,
        bot_username: str = "BarrioConectaBot",
        bot_first_name: str = "Barrio Conecta",
        global_rate_per_s: float | None = None,
        chat_rate_per_s: float | None = None,
        *,
        callback_query_ttl_s: float = 15.0,
        webhook_max_attempts: int = 3,
        webhook_retry_delay_s: float = 0.05,
        webhook_concurrency: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(
            token,
            bot_id,
            bot_username,
            bot_first_name,
            global_rate_per_s,
            chat_rate_per_s,
            callback_query_ttl_s=callback_query_ttl_s,
            clock=clock,
        )
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_retry_delay_s = webhook_retry_delay_s
        # Telegram opens up to max_connections (default 40) at once; httpx's pool gets slower,
        # not faster, past a handful of concurrent requests, so deliveries are capped here.
        self.webhook_concurrency = webhook_concurrency
        self.base_url: str | None = None
        self._app: BotApiApp | None = None
        self._http: httpx.AsyncClient | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._delivering = 0

    @property
    def app(self) -> BotApiApp:
        """The ASGI app: Bot API, file downloads and the /control routes."""
        if self._app is None:
            self._app = _build_app(self)
        return self._app

    async def aclose(self) -> None:
        """Stop webhook delivery and close its HTTP client; pending long polls return."""
        self._release_waiters()
        workers, self._workers = list(self._workers), set()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # ------------------------------------------------------------------ webhook delivery --

    def _on_webhook_changed(self) -> None:
        for task in self._workers:
            task.cancel()
        self._workers = set()
        self._chat_locks.clear()
        if self._webhook is not None:
            self._start_dispatcher(self._webhook)

    def _on_update_queued(self) -> None:
        if self._webhook is not None and not self._workers:
            self._start_dispatcher(self._webhook)

    def _start_dispatcher(self, hook: WebhookConfig) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # started by the next update queued from inside a loop
        task = loop.create_task(self._dispatch_webhook(hook))
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    @property
    def pending_update_count(self) -> int:
        return len(self._updates) + self._delivering

    def _busy_webhook(self) -> int:
        return self._delivering

    async def _dispatch_webhook(self, hook: WebhookConfig) -> None:
        """Hand pending updates to up to `max_connections` concurrent deliveries."""
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(min(hook.max_connections, self.webhook_concurrency))
        while self._webhook is hook:
            if not self._updates:
                await self._updates_changed.wait(60.0)
                continue
            await slots.acquire()
            if self._webhook is not hook or not self._updates:
                slots.release()
                continue
            update = self._updates.popleft()
            self._delivering += 1
            lock = self._chat_locks.setdefault(_update_chat_id(update), asyncio.Lock())
            task = loop.create_task(self._deliver_in_order(hook, update, lock))
            self._workers.add(task)
            # A callback rather than try/finally: it also runs for a task cancelled before
            # its first step, whose coroutine body never starts.
            task.add_done_callback(functools.partial(self._delivery_done, update, slots))

    async def _deliver_in_order(
        self, hook: WebhookConfig, update: JSONDict, lock: asyncio.Lock
    ) -> None:
        # Tasks first run in creation order and asyncio.Lock is FIFO, so the updates of one
        # chat reach the bot in order even over many connections, as on Telegram.
        async with lock:
            await self._deliver(hook, update)

    def _delivery_done(
        self, update: JSONDict, slots: asyncio.Semaphore, task: asyncio.Task[None]
    ) -> None:
        self._workers.discard(task)
        self._delivering -= 1
        slots.release()
        if task.cancelled():
            self._updates.appendleft(update)  # the webhook changed: keep it for the next one
        elif task.exception() is not None:
            self.stats["webhook_failures"] += 1
        self._activity.notify_all()

    async def _deliver(self, hook: WebhookConfig, update: JSONDict) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=100))
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        body = json.dumps(update, ensure_ascii=False).encode()
        for attempt in range(self.webhook_max_attempts):
            try:
                response = await self._http.post(hook.url, content=body, headers=headers)
            except httpx.HTTPError as error:
                problem = f"Connection error: {error.__class__.__name__} {error}".strip()
            else:
                if response.is_success:
                    self.stats["webhook_deliveries"] += 1
                    await self._run_webhook_reply(response)
                    return
                problem = (
                    f"Wrong response from the webhook: {response.status_code} "
                    f"{response.reason_phrase}"
                )
            hook.last_error_date = int(time.time())
            hook.last_error_message = problem
            if attempt + 1 < self.webhook_max_attempts:
                await asyncio.sleep(self.webhook_retry_delay_s * 2**attempt)
        self.stats["webhook_failures"] += 1

    async def _run_webhook_reply(self, response: httpx.Response) -> None:
        # A webhook may answer with a Bot API call in its body, which Telegram then executes.
        if not response.content or "json" not in response.headers.get("content-type", ""):
            return
        try:
            reply = response.json()
        except ValueError:
            return
        if isinstance(reply, dict) and isinstance(reply.get("method"), str):
            method = reply.pop("method")
            await self.call_api(method, reply)


def _update_chat_id(update: JSONDict) -> int:
    for key, payload in update.items():
        if key == "update_id" or not isinstance(payload, dict):
            continue
        chat = payload.get("chat") or (payload.get("message") or {}).get("chat")
        if chat:
            return int(chat["id"])
        user = payload.get("from")
        if user:
            return int(user["id"])
    return 0


# --------------------------------------------------------------------- request parsing --


def parse_params(query_string: bytes, content_type: str, body: bytes) -> dict[str, Any]:
    """Bot API parameters from the query string and a form, multipart or JSON body.

    Values stay as sent (strings for forms); `Params` decodes them field by field.
    """
    params: dict[str, Any] = {}
    if query_string:
        params.update(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    if not body:
        return params
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(data, dict):
            raise bad_request("JSON object expected")
        params.update(data)
    elif mime == "multipart/form-data":
        params.update(_parse_multipart(body, content_type))
    else:
        try:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise bad_request("request body is not valid UTF-8") from None
    return params


def _header_params(value: str) -> email.message.Message:
    header = email.message.Message()
    header["content-type"] = value
    return header


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    boundary = _header_params(content_type).get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise bad_request("multipart boundary is missing")
    fields: dict[str, Any] = {}
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = email.message.Message()
        disposition["content-disposition"] = headers.get("content-disposition", "")
        field = disposition.get_param("name", header="content-disposition")
        if not isinstance(field, str):
            continue
        filename = disposition.get_filename()
        if filename is None:
            fields[field] = content.decode("utf-8", "replace")
        else:
            part_type = headers.get("content-type", "application/octet-stream")
            fields[field] = UploadedFile(filename, part_type.split(";")[0].strip(), content)
    return fields


# -------------------------------------------------------------------------- the ASGI app --


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


def _int_arg(args: dict[str, Any], name: str) -> int | None:
    value = args.get(name)
    return None if value in (None, "") else int(value)


ControlHandler = Callable[[dict[str, Any]], Any]


def _control(handler: ControlHandler) -> Callable[[Request], Awaitable[Response]]:
    """A control route: query string and JSON body in, JSON out; bad input is a 400."""

    async def endpoint(request: Request) -> Response:
        args: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        try:
            if body:
                data = json.loads(body)
                args.update(data if isinstance(data, dict) else {"items": data})
            result = handler(args)
            if inspect.isawaitable(result):
                result = await result
        except TimeoutError as error:
            return _error(408, str(error))
        except (ValueError, TypeError, KeyError) as error:
            return _error(400, f"{error.__class__.__name__}: {error}")
        return JSONResponse(result)

    return endpoint


class BotApiApp:
    """ASGI entry point. Bot API calls, the hot path of a benchmark, are answered here
    directly (Starlette's routing and request objects would double the emulator's cost per
    call); the file and control routes go to a Starlette app."""

    def __init__(self, emulator: TelegramEmulator, fallback: ASGIApp):
        self.emulator = emulator
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        token, slash, method = path[4:].partition("/")
        if not (path.startswith("/bot") and slash and method and "/" not in method):
            await self.fallback(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if not self.emulator.check_token(token):
            status, answer = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        else:
            content_type = ""
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value.decode("latin-1")
            try:
                params = parse_params(scope["query_string"], content_type, body)
            except ApiError as error:
                status, answer = error.status, error.payload()
            else:
                status, answer = await self.emulator.call_api(method, params)
        payload = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _build_app(emulator: TelegramEmulator) -> BotApiApp:
    async def file_download(request: Request) -> Response:
        content = emulator.file_content(request.path_params["path"])
        if not emulator.check_token(request.path_params["token"]) or content is None:
            return JSONResponse(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404
            )
        return Response(content, media_type="application/octet-stream")

    def send_many(args: dict[str, Any]) -> JSONDict:
        updates = emulator.send_many(args["items"])
        first = updates[0]["update_id"] if updates else None
        last = updates[-1]["update_id"] if updates else None
        return {"count": len(updates), "first_update_id": first, "last_update_id": last}

    def start_chats(args: dict[str, Any]) -> JSONDict:
        emulator.start_chats(int(user_id) for user_id in args["user_ids"])
        return {"ok": True}

    def block(args: dict[str, Any]) -> JSONDict:
        user_id = int(args["user_id"])
        if args.get("blocked", True):
            emulator.block(user_id, notify=bool(args.get("notify", True)))
        else:
            emulator.unblock(user_id, notify=bool(args.get("notify", True)))
        return {"user_id": user_id, "blocked": emulator.is_blocked(user_id)}

    def message(args: dict[str, Any]) -> Any:
        found = emulator.message(int(args["chat_id"]), int(args["message_id"]))
        if found is None:
            raise KeyError("the bot never sent that message")
        return found

    def rate_limits(args: dict[str, Any]) -> JSONDict:
        emulator.set_rate_limits(args.get("global_per_s"), args.get("chat_per_s"))
        return {"global_per_s": emulator.global_rate_per_s, "chat_per_s": emulator.chat_rate_per_s}

    def reset(_args: dict[str, Any]) -> JSONDict:
        emulator.reset()
        return {"ok": True}

    def fault(args: dict[str, Any]) -> JSONDict:
        emulator.fail_next(**args)
        return {"ok": True}

    def clear_faults(args: dict[str, Any]) -> JSONDict:
        emulator.clear_faults(args.get("method"))
        return {"ok": True}

    async def wait_sent(args: dict[str, Any]) -> list[JSONDict]:
        return await emulator.wait_for_sent(
            _int_arg(args, "chat_id"),
            count=_int_arg(args, "count") or 1,
            timeout=float(args.get("timeout") or 5.0),
        )

    async def wait_stats(args: dict[str, Any]) -> JSONDict:
        """Like `/control/sent/wait`, but answers with the counters, not the messages: a
        benchmark waiting for thousands of replies should not pay to read them back."""
        wanted = _int_arg(args, "sent_messages") or 0
        await emulator.wait_for(
            lambda: emulator.snapshot_stats()["sent_messages"] >= wanted,
            timeout=float(args.get("timeout") or 5.0),
            what=f"{wanted} messages sent",
        )
        return emulator.snapshot_stats()

    controls: list[tuple[str, str, ControlHandler]] = [
        ("POST", "/control/users", lambda a: emulator.user(**a)),
        ("POST", "/control/messages", lambda a: emulator.send_text(**a)),
        ("POST", "/control/messages/bulk", send_many),
        ("POST", "/control/edits", lambda a: emulator.edit_text(**a)),
        ("POST", "/control/callbacks", lambda a: emulator.tap(**a)),
        ("POST", "/control/locations", lambda a: emulator.send_location(**a)),
        ("POST", "/control/photos", lambda a: emulator.send_photo(**a)),
        ("POST", "/control/stickers", lambda a: emulator.send_sticker(**a)),
        ("POST", "/control/voices", lambda a: emulator.send_voice(**a)),
        ("POST", "/control/contacts", lambda a: emulator.send_contact(**a)),
        ("POST", "/control/chats", start_chats),
        ("POST", "/control/block", block),
        ("POST", "/control/unblock", lambda a: block({**a, "blocked": False})),
        (
            "GET",
            "/control/sent",
            lambda a: emulator.sent(
                _int_arg(a, "chat_id"), after_message_id=_int_arg(a, "after_message_id")
            ),
        ),
        ("GET", "/control/sent/wait", wait_sent),
        ("GET", "/control/message", message),
        ("GET", "/control/callback_answers", lambda _a: emulator.callback_answers),
        (
            "GET",
            "/control/commands",
            lambda a: emulator.commands_for(language_code=a.get("language_code", "")),
        ),
        ("GET", "/control/updates", lambda _a: emulator.pending_updates()),
        ("GET", "/control/stats", lambda _a: emulator.snapshot_stats()),
        ("GET", "/control/stats/wait", wait_stats),
        ("POST", "/control/rate_limits", rate_limits),
        ("POST", "/control/faults", fault),
        ("POST", "/control/faults/clear", clear_faults),
        ("POST", "/control/reset", reset),
    ]
    routes = [Route("/file/bot{token}/{path:path}", file_download, methods=["GET"])]
    routes += [Route(path, _control(handler), methods=[verb]) for verb, path, handler in controls]
    return BotApiApp(emulator, Starlette(routes=routes))


# ------------------------------------------------------------------------------ serving --


class EmulatorServer:
    """uvicorn serving an ASGI app inside the current event loop."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.host = host
        self.port = port
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only disables Nagle (TCP_NODELAY) on sockets that
        # say they are TCP, and with Nagle on every request stalls ~40 ms on delayed ACKs.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # Binding here rather than in uvicorn turns a busy port into an OSError for the
        # caller instead of uvicorn's sys.exit() inside a task.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,
            server_header=False,
            date_header=False,
        )
        server = self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        # uvicorn exposes no event for "listening"; poll its flag for the few ms it takes.
        while not server.started:
            if self._task.done():
                sock.close()
                await self._task
                raise RuntimeError("the emulator's HTTP server stopped while starting")
            await asyncio.sleep(0.002)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        url_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{url_host}:{port}"
        return self.base_url

    async def wait(self) -> None:
        """Until the server stops (e.g. on Ctrl-C when run standalone)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve any ASGI app (a test's webhook receiver, say) in this loop; yields its base URL."""
    server = EmulatorServer(app, host, port)
    base_url = await server.start()
    try:
        yield base_url
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def serve_emulator(
    emulator: TelegramEmulator, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve the emulator in the current event loop; yields e.g. "http://127.0.0.1:PORT".

    On exit, long polls still waiting are answered at once so shutdown never hangs on them.
    """
    emulator._closing = False
    server = EmulatorServer(emulator.app, host, port)
    emulator.base_url = await server.start()
    try:
        yield emulator.base_url
    finally:
        emulator._release_waiters()
        await server.stop()
        await emulator.aclose()
        emulator._closing = False


# ----------------------------------------------------------------------------------- CLI --


async def _serve_forever(emulator: TelegramEmulator, host: str, port: int) -> None:
    emulator._closing = False
    server = EmulatorServer(emulator.app, host, port)
    print(await server.start(), flush=True)
    try:
        await server.wait()
    finally:
        emulator._release_waiters()
        await server.stop()
        await emulator.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Telegram Bot API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--bot-id", type=int, help="defaults to the number before ':' in the token")
    parser.add_argument("--bot-username", default="BarrioConectaBot")
    parser.add_argument("--bot-first-name", default="Barrio Conecta")
    parser.add_argument("--rate", type=float, help="global sends per second (default: no limit)")
    parser.add_argument("--chat-rate", type=float, help="sends per second per chat")
    args = parser.parse_args(argv)
    prefix = args.token.split(":", 1)[0]
    bot_id = args.bot_id or (int(prefix) if prefix.isdigit() else 123456)
    emulator = TelegramEmulator(
        token=args.token,
        bot_id=bot_id,
        bot_username=args.bot_username,
        bot_first_name=args.bot_first_name,
        global_rate_per_s=args.rate,
        chat_rate_per_s=args.chat_rate,
    )
    # uvicorn turns Ctrl-C into a graceful stop and then re-raises it.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(emulator, args.host, args.port))


if __name__ == "__main__":
    main()
