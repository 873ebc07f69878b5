"""Per-person facts the chat needs and the job store does not hold: language (Telegram's and the /lang choice) and
who an admin denied. Their own table in the same SQLite file (a separate migration: JobStore is untouched).

Denials are kept so that `/deny` outlives a restart even for someone listed in ALLOWED_IDS: the start-up list
allows, a later /deny wins, a later /allow lifts it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

_MIGRATION = """
CREATE TABLE IF NOT EXISTS people (
    user_id INTEGER PRIMARY KEY,
    telegram_lang TEXT,
    chosen_lang TEXT,
    denied_at REAL
);
CREATE TABLE IF NOT EXISTS chat_jobs (job_id TEXT PRIMARY KEY, request_message_id INTEGER, lang TEXT);
"""


class Preferences:
    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(Path(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_MIGRATION)

    def close(self) -> None:
        self._db.close()

    def _set(self, user_id: int, column: str, value: object) -> None:
        assert column in ("telegram_lang", "chosen_lang", "denied_at")
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO people (user_id) VALUES (?)", (user_id,))
            self._db.execute(f"UPDATE people SET {column} = ? WHERE user_id = ?", (value, user_id))

    def _get(self, user_id: int, column: str) -> object:
        assert column in ("telegram_lang", "chosen_lang", "denied_at")
        with self._lock:
            row = self._db.execute(f"SELECT {column} FROM people WHERE user_id = ?", (user_id,)).fetchone()
        return row[0] if row else None

    def seen(self, user_id: int, telegram_lang: str | None) -> None:
        if telegram_lang and telegram_lang != self._get(user_id, "telegram_lang"):
            self._set(user_id, "telegram_lang", telegram_lang)

    def choose_language(self, user_id: int, lang: str) -> None:
        self._set(user_id, "chosen_lang", lang)

    def languages(self, user_id: int) -> tuple[str | None, str | None]:
        """(the /lang choice, Telegram's language_code), either None."""
        chosen, telegram = self._get(user_id, "chosen_lang"), self._get(user_id, "telegram_lang")
        return (str(chosen) if chosen else None, str(telegram) if telegram else None)

    def deny(self, user_id: int) -> None:
        self._set(user_id, "denied_at", time.time())

    def lift_denial(self, user_id: int) -> None:
        self._set(user_id, "denied_at", None)

    def is_denied(self, user_id: int) -> bool:
        return self._get(user_id, "denied_at") is not None

    # the chat side of a job: which message asked for it (replies go there) and the language it speaks
    def remember_job(self, job_id: str, request_message_id: int | None, lang: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO chat_jobs (job_id, request_message_id, lang) VALUES (?, ?, ?)",
                (job_id, request_message_id, lang),
            )

    def job_chat(self, job_id: str) -> tuple[int | None, str | None]:
        with self._lock:
            row = self._db.execute(
                "SELECT request_message_id, lang FROM chat_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return (row[0], row[1]) if row else (None, None)
