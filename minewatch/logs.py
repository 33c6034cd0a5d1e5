"""Logging set-up: a console for people, or JSON lines for log collectors (structured logs).

``MINEWATCH_LOG_FORMAT=json`` writes one JSON object per record to stderr: ``time`` (UTC, ISO
8601), ``level``, ``logger``, ``message``, every ``extra=`` field the call passed, and the
traceback as ``exception``. The console format (default) is rich's, for a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Literal

from rich.console import Console
from rich.logging import RichHandler

LogFormat = Literal["console", "json"]

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (no newline inside: messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(verbose: bool, fmt: LogFormat, console: Console) -> None:
    """Configure the root logger once, for a command's whole run."""
    if fmt == "json":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        handler = RichHandler(console=console, show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
