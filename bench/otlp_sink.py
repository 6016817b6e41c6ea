"""A minimal OTLP/HTTP trace receiver for the `treegate-tracing` row of `make bench`.

    .venv/bin/python -m bench.otlp_sink --port P

It takes `POST /v1/traces` (OTLP over HTTP/protobuf, as `opentelemetry-exporter-otlp-proto-http`
sends it), reads the whole body and answers 200 with an empty `ExportTraceServiceResponse` (zero
bytes of protobuf): the traced server exports what it really exports and nothing fails. It keeps
no span. `GET /stats` says how many exports and bytes it took; `GET /healthz` answers 200.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/v1/traces"


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exports = 0
        self.bytes = 0

    def add(self, size: int) -> None:
        with self.lock:
            self.exports += 1
            self.bytes += size

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {"exports": self.exports, "bytes": self.bytes}


def handler_for(counts: Counts) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(size)
            if self.path != PATH:
                self._answer(404, b"", "text/plain")
                return
            counts.add(size)
            self._answer(200, b"", "application/x-protobuf")

        def do_GET(self) -> None:
            if self.path == "/stats":
                self._answer(200, json.dumps(counts.as_dict()).encode(), "application/json")
            elif self.path == "/healthz":
                self._answer(200, b"ok", "text/plain")
            else:
                self._answer(404, b"", "text/plain")

        def _answer(self, status: int, body: bytes, media: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # one line per export would only fill the log

    return Handler


def serve(port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), handler_for(Counts()))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with serve(args.port) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
