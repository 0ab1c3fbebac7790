"""The embedded LinkShortener: unique 6-character aliases in the shared SQLite file, resolved
by the webhook receiver's GET /l/{alias}, with every hit kept in a click table."""

from __future__ import annotations

import secrets
import sqlite3
import string
from collections.abc import Sequence

from integrations.sqlite_store import SqliteDatabase, to_sql
from uysp.errors import LinkError
from uysp.ports import Clock, ShortLink

ALIAS_ALPHABET = string.ascii_letters + string.digits
ALIAS_LENGTH = 6
LINKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    alias TEXT PRIMARY KEY, lead_id TEXT, campaign TEXT, target_url TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS clicks (
    id INTEGER PRIMARY KEY, alias TEXT, at TEXT, user_agent TEXT, method TEXT, counted INTEGER);
CREATE INDEX IF NOT EXISTS clicks_alias ON clicks (alias);
"""


class LocalShortener:
    def __init__(self, db: SqliteDatabase, clock: Clock, base_url: str) -> None:
        self.db = db.relaxed()
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        db.apply_schema(LINKS_SCHEMA)

    def create(self, target_url: str, *, lead_id: str, campaign: str) -> ShortLink:
        for _ in range(10):
            alias = "".join(secrets.choice(ALIAS_ALPHABET) for _ in range(ALIAS_LENGTH))
            try:
                with self.db.transaction() as conn:
                    conn.execute(
                        "INSERT INTO links VALUES (?, ?, ?, ?, ?)",
                        (alias, lead_id, campaign, target_url, to_sql(self.clock.now())),
                    )
            except sqlite3.IntegrityError:
                continue  # alias taken: draw again
            return ShortLink(id=alias, url=f"{self.base_url}/{alias}")
        raise LinkError(f"no free alias for lead {lead_id} after 10 draws")

    def record_click(self, alias: str, *, user_agent: str, method: str, counted: bool) -> None:
        """Keep every hit; `counted` is False for HEAD requests and link-preview bots."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO clicks (alias, at, user_agent, method, counted)"
                " VALUES (?, ?, ?, ?, ?)",
                (alias, to_sql(self.clock.now()), user_agent, method, int(counted)),
            )

    def clicks(self, link_ids: Sequence[str]) -> dict[str, int]:
        counts = {alias: 0 for alias in link_ids}
        for start in range(0, len(link_ids), 500):
            chunk = list(link_ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.query(
                f"SELECT alias, COUNT(*) AS n FROM clicks WHERE counted = 1 AND alias IN ({marks})"
                " GROUP BY alias",
                chunk,
            )
            counts.update({r["alias"]: r["n"] for r in rows})
        return counts
