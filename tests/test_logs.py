"""`treegate serve`'s log lines: batched, in order, and formatted as logging formats them."""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

from gql.logs import BatchedStreamHandler, Formatter

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def record(message: str, level: int = logging.INFO, created: float = 1_765_000_000.25) -> Any:
    made = logging.makeLogRecord(
        {"msg": message, "levelno": level, "levelname": logging.getLevelName(level)}
    )
    made.name = "treegate.access"
    made.created = created
    made.msecs = (created - int(created)) * 1000
    return made


def test_the_formatter_writes_what_loggings_own_writes() -> None:
    ours, theirs = Formatter(FORMAT), logging.Formatter(FORMAT)
    for created in (1_765_000_000.25, 1_765_000_000.999, 1_765_000_001.0, 1_765_003_600.5):
        line = record("x", created=created)
        assert ours.format(line) == theirs.format(line)


class Stream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


def test_lines_are_written_in_order_by_the_writer_thread_and_at_once_for_warnings() -> None:
    stream = Stream()
    handler = BatchedStreamHandler(stream, interval=3600)  # the thread would wait an hour
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        for n in range(3):
            handler.handle(record(f"line {n}"))
        assert stream.getvalue() == ""  # kept for the next batch
        handler.handle(record("trouble", logging.WARNING))
        assert stream.getvalue() == "line 0\nline 1\nline 2\ntrouble\n"
        handler.handle(record("last"))
    finally:
        handler.close()
    assert stream.getvalue().endswith("trouble\nlast\n")  # closing writes what is left


def test_the_writer_thread_writes_a_batch_without_being_asked() -> None:
    stream = Stream()
    handler = BatchedStreamHandler(stream, interval=0.01)
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        handler.handle(record("soon"))
        assert stream.written.wait(10)
        assert stream.getvalue() == "soon\n"
    finally:
        handler.close()
