"""A fake Telegram Bot API server on loopback (aiohttp in a thread of its own), for python-telegram-bot's base_url.

Routes `/bot{token}/{method}` (form or multipart, as PTB sends them) and `/file/bot{token}/{path}`. It records every
call, serves queued updates to getUpdates (long poll), and behaves like Telegram where it matters to us: an edit
that changes nothing is refused with 400 "message is not modified".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support import waiting

TOKEN = "123456:TEST-fake-bot-token-abcdefghij"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "vidfarm", "username": "vidfarm_test_bot"}


@dataclass
class Call:
    method: str
    fields: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


class FakeBotApi:
    def __init__(self, *, port: int = 0) -> None:
        self.languages: dict[int, str] = {}  # user id -> the language_code their updates carry
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.texts: dict[int, str] = {}  # message_id -> current text
        self.polls = 0  # getUpdates calls (not kept in `calls`)
        self.unchanged_edits = 0  # edits Telegram would refuse: the bot must never send one
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    # lifecycle
    def start(self) -> FakeBotApi:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(waiting.deadline_s(60)), "the fake Bot API did not start"
        return self

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=200 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # what tests send
    def push(self, update: dict[str, Any]) -> None:
        with self._lock:
            self.updates.append({"update_id": next(self._update_ids), **update})

    def send_text(self, user_id: int, text: str) -> int:
        """Returns the message id (what the bot's replies must point at)."""
        command = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
        message = self._message(user_id, text=text, entities=command)
        self.push({"message": message})
        return int(message["message_id"])

    def edit_text(self, user_id: int, message_id: int, text: str) -> None:
        message = {**self._message(user_id, text=text), "message_id": message_id, "edit_date": int(time.time())}
        self.push({"edited_message": message})

    def send_other(self, user_id: int, **content: Any) -> None:
        """A sticker, voice, location...: e.g. send_other(1, voice={...})."""
        self.push({"message": self._message(user_id, **content)})

    def send_photo(
        self, user_id: int, data: bytes, *, caption: str = "", size: int | None = None, album: str = ""
    ) -> int:
        file_id = self.add_file(data, "photos")
        photo = [
            {
                "file_id": file_id,
                "file_unique_id": file_id,
                "width": 64,
                "height": 64,
                "file_size": size if size is not None else len(data),
            }
        ]
        message = self._message(user_id, photo=photo, caption=caption, media_group_id=album)
        self.push({"message": message})
        return int(message["message_id"])

    def send_document(self, user_id: int, data: bytes, *, name: str, mime: str, size: int | None = None) -> None:
        file_id = self.add_file(data, "documents")
        document = {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_name": name,
            "mime_type": mime,
            "file_size": size if size is not None else len(data),
        }
        self.push({"message": self._message(user_id, document=document)})

    def press(self, user_id: int, data: str, message_id: int) -> None:
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": BOT_USER,
            "text": self.texts.get(message_id, ""),
        }
        self.push(
            {
                "callback_query": {
                    "id": str(next(self._ids)),
                    "from": _user(user_id, self.languages.get(user_id)),
                    "chat_instance": "1",
                    "data": data,
                    "message": message,
                }
            }
        )

    def add_file(self, data: bytes, folder: str) -> str:
        file_id = f"F{next(self._ids)}"
        self.files[file_id] = data
        return file_id

    def _message(self, user_id: int, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": _user(user_id, self.languages.get(user_id)),
            **{k: v for k, v in content.items() if v},
        }

    # what tests read
    def sent(self, method: str, chat_id: int | None = None) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == method and (chat_id is None or c.fields.get("chat_id") == str(chat_id))
            ]

    @staticmethod
    def reply_to(call: Call) -> int | None:
        """The message a sent message replies to (PTB sends reply_parameters as JSON)."""
        parameters = call.fields.get("reply_parameters")
        return int(json.loads(parameters)["message_id"]) if parameters else None

    def wait_for(
        self, predicate: Callable[[], Any], *, timeout: float = waiting.DEFAULT_TIMEOUT_S, what: str = ""
    ) -> Any:
        """tests.support.waiting.wait_for, saying what the bot sent instead when it never happens."""
        return waiting.wait_for(predicate, what or str(predicate), timeout=timeout, every=0.1, describe=self._seen)

    def _seen(self) -> str:
        with self._lock:
            sent = [(c.method, c.fields.get("text", "")[:80]) for c in self.calls if c.method != "getUpdates"]
        return f"the bot sent {sent}"

    # the server
    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != TOKEN:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        files = {
            k: v.file.read() if isinstance(v, web.FileField) else bytes(v)
            for k, v in form.items()
            if not isinstance(v, str)
        }
        for name, value in list(fields.items()):  # "attach://<part>" names another part of the upload
            if value.startswith("attach://") and value[9:] in files:
                files[name] = files.pop(value[9:])
        call = Call(method, fields, files)
        if method == "getUpdates":
            self.polls += 1
            return web.json_response({"ok": True, "result": await self._get_updates(fields)})
        with self._lock:
            self.calls.append(call)
        return self._answer(call)

    async def _get_updates(self, fields: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(fields.get("offset", 0) or 0)
        deadline = time.monotonic() + min(float(fields.get("timeout", 0) or 0), 1.0)
        while True:
            with self._lock:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                pending = list(self.updates)
            if pending or time.monotonic() >= deadline:
                return pending
            await asyncio.sleep(0.05)

    def _answer(self, call: Call) -> web.Response:
        f, chat = call.fields, {"id": int(call.fields.get("chat_id", 0) or 0), "type": "private"}
        if call.method == "getMe":
            return _ok(BOT_USER)
        if call.method == "getFile":
            return _ok({"file_id": f["file_id"], "file_unique_id": f["file_id"], "file_path": f"files/{f['file_id']}"})
        if call.method == "sendMessage":
            message_id = next(self._ids)
            self.texts[message_id] = f["text"]
            return _ok({"message_id": message_id, "date": int(time.time()), "chat": chat, "text": f["text"]})
        if call.method == "editMessageText":
            message_id = int(f["message_id"])
            if self.texts.get(message_id) == f["text"]:
                self.unchanged_edits += 1
                return web.json_response(
                    {"ok": False, "error_code": 400, "description": "Bad Request: message is not modified"}, status=400
                )
            self.texts[message_id] = f["text"]
            return _ok({"message_id": message_id, "date": int(time.time()), "chat": chat, "text": f["text"]})
        if call.method == "sendVideo":
            video = {
                "file_id": "VID1",
                "file_unique_id": "VID1",
                "width": int(f.get("width", 0)),
                "height": int(f.get("height", 0)),
                "duration": int(f.get("duration", 0)),
            }
            return _ok({"message_id": next(self._ids), "date": int(time.time()), "chat": chat, "video": video})
        if call.method == "sendPhoto":
            size = {"file_id": "PH1", "file_unique_id": "PH1", "width": 1, "height": 1}
            return _ok({"message_id": next(self._ids), "date": int(time.time()), "chat": chat, "photo": [size]})
        return _ok(True)

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if request.match_info["token"] != TOKEN or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])


def _user(user_id: int, language_code: str | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
    return {**user, "language_code": language_code} if language_code else user


def _ok(result: Any) -> web.Response:
    return web.Response(text=json.dumps({"ok": True, "result": result}), content_type="application/json")
