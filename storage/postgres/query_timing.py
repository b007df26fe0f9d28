"""`db_query_duration_seconds` at the source: asyncpg's query logger times every statement a pooled connection
runs (fetch*, execute, executemany), and this module turns the SQL text into bounded labels. No Ray here:
`QueryTimings` only buffers (query_type, table, seconds); the process's metrics recorder drains it
(storage/metrics/process_metrics.py) off the query path.

Cheap by design: asyncpg already measures `elapsed`; the label lookup is one dict hit per distinct SQL text
(statements are module constants), and an observation is a list append. COPY is not a "query" to asyncpg's
logger; the event store's COPY is timed by its caller (`observe`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_PENDING = 50_000  # beyond this, observations are dropped (and counted) until the next drain
MAX_SHAPES = 2_000  # distinct SQL texts remembered; dynamic SQL beyond this is labelled without caching
_VERBS = ("select", "insert", "update", "delete", "copy", "create", "alter", "drop", "analyze", "vacuum", "lock",
          "begin", "commit", "rollback", "savepoint", "release", "set", "show", "truncate")
_TABLE = re.compile(
    r'\b(?:from|into|update|table)\s+(?:only\s+|if\s+(?:not\s+)?exists\s+)?'
    r'("?[a-z_][a-z0-9_]*"?(?:\."?[a-z_][a-z0-9_]*"?)?)', re.IGNORECASE)
_PARTITION_SUFFIX = re.compile(r"_(?:p?\d{4}(?:_?\d{2})?|default)$")  # telematics_events_2026_05 → its parent
_NOT_TABLES = frozenset({"unnest", "generate_series", "select", "jsonb_to_recordset", "json_to_recordset"})


def query_labels(sql: str) -> tuple[str, str]:
    """(query_type, table) of a statement: the leading verb (a CTE counts as its main statement's verb) and the
    first table it reads or writes, partitions folded into their parent; "other"/"-" when unknown. Pure."""
    text = sql.lstrip().lower()
    verb = text.split(None, 1)[0] if text else ""
    if verb == "with":
        main = re.search(r"\)\s*(select|insert|update|delete)\b", text)
        verb = main.group(1) if main else "select"
    elif verb == "(":
        verb = "select"
    if verb not in _VERBS:
        verb = "other"
    table = "-"
    for match in _TABLE.finditer(text):
        name = match.group(1).replace('"', "").split(".")[-1]
        if name not in _NOT_TABLES:
            table = _PARTITION_SUFFIX.sub("", name)
            break
    return verb, table


@dataclass
class QueryTimings:
    """Per-process buffer of statement timings; `drain()` hands them to the metrics recorder."""

    pending: list[tuple[str, str, float]] = field(default_factory=list)
    dropped: int = 0
    _shapes: dict[str, tuple[str, str]] = field(default_factory=dict)

    def observe(self, query_type: str, table: str, seconds: float) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self.pending.append((query_type, table, seconds))

    def logged(self, record: Any) -> None:
        """asyncpg query-logger callback (a `LoggedQuery`: .query, .elapsed)."""
        labels = self._shapes.get(record.query)
        if labels is None:
            labels = query_labels(record.query)
            if len(self._shapes) < MAX_SHAPES:
                self._shapes[record.query] = labels
        self.observe(labels[0], labels[1], record.elapsed)

    def drain(self) -> list[tuple[str, str, float]]:
        pending, self.pending = self.pending, []
        return pending


_timings = QueryTimings()


def query_timings() -> QueryTimings:
    """The process's buffer: every pool of the process feeds it (asyncpg calls the logger on the loop)."""
    return _timings


def query_logger() -> Callable[[Any], None]:
    return _timings.logged
