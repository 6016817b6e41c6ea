"""How `treegate serve` writes its log lines."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, TextIO


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes lines in batches, at most `interval` seconds late.

    A serving process writes an access line per request; written one by one, each is a system
    call of its own (stderr is line-buffered), a measurable share of a short request. Lines
    are kept in order and written together by a background thread every `interval` seconds,
    at once for a warning or worse, and on close (logging's shutdown at exit flushes too).
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2) -> None:
        super().__init__(stream)
        self.interval = interval
        self._pending: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="treegate-log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
        if record.levelno >= logging.WARNING:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                lines, self._pending = self._pending, []
                try:
                    self.stream.write("".join(lines))
                except Exception:  # as StreamHandler: a broken stream must not break a request
                    return
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
        super().close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()


class Formatter(logging.Formatter):
    """logging's formatter, with the date and time of `%(asctime)s` formatted once a second
    (`time.strftime` per line was a tenth of an access line's cost); same text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"  # logging's default_msec_format


def flush(logger: logging.Logger) -> None:
    """Write out every line `logger`'s handlers hold back. A worker of `treegate serve --workers`
    ends by its stop signal once its lifespan is over, without logging's flush at exit."""
    for handler in logger.handlers:
        handler.flush()
