"""Cross-origin requests (CORS): what lets a page on another origin call Treegate.

Off unless `TREEGATE_CORS_ORIGINS` names origins: the app factory then builds
`gql.fast_lane.CorsApp`, which applies this policy to the whole application, /graphql (answered
ahead of Starlette's middleware) included. Without origins the plain `TreegateApp` serves,
unchanged.

The headers are added to the answer as it is sent, after the endpoint's shared GET answer
cache (`resolvers.caches`): a cached answer holds no origin's `Access-Control-Allow-Origin`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gql.auth import KEY_HEADERS
from gql.http import READ_HEADER_NAME

ANY = "*"
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = ", ".join(
    ("Content-Type", *KEY_HEADERS, "If-None-Match", "X-Request-Id", READ_HEADER_NAME)
)
"""The request headers Treegate reads that a browser does not send without asking (`Accept`
is safelisted)."""
EXPOSE_HEADERS = "ETag, Retry-After, X-Request-Id"
MAX_AGE_S = 600


def parse_origins(value: str) -> tuple[str, ...]:
    """The origins of a comma-separated list, each checked as `scheme://host[:port]` (or `*`);
    raises ValueError with the first wrong one."""
    origins: list[str] = []
    for part in value.split(","):
        origin = part.strip()
        if not origin:
            continue
        if origin == ANY:
            origins.append(origin)
            continue
        try:
            split = urlsplit(origin)
            port = split.port
        except ValueError:
            split, port = None, None
        if (
            split is None
            or split.scheme not in ("http", "https")
            or not split.hostname
            or split.path
            or split.query
            or split.fragment
            or split.username is not None
            or split.password is not None
            or origin.endswith(":")
        ):
            raise ValueError(
                f"{origin!r} is not an origin: write scheme://host[:port], with http or https "
                "and no path (e.g. https://app.example.org or http://localhost:3000)"
            )
        host = f"[{split.hostname}]" if ":" in split.hostname else split.hostname
        netloc = host if port is None else f"{host}:{port}"
        origins.append(f"{split.scheme}://{netloc}")
    return tuple(origins)


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: frozenset[str]
    any_origin: bool
    credentials: bool

    @classmethod
    def of(cls, origins: Iterable[str], credentials: bool) -> CorsPolicy:
        found = frozenset(origins)
        return cls(found - {ANY}, ANY in found, credentials)

    def allowed(self, origin: str) -> str | None:
        """The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed."""
        if origin in self.origins:
            return origin
        if self.any_origin:
            return ANY
        return None

    def answer_headers(self, allowed: str) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"access-control-allow-origin", allowed.encode("latin-1")),
            (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
        ]
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    def preflight_headers(self, allowed: str) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"access-control-allow-origin", allowed.encode("latin-1")),
            (b"access-control-allow-methods", ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", str(MAX_AGE_S).encode()),
        ]
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers


def with_vary_origin(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with `Origin` added to `Vary` (merged into the one there, if any)."""
    merged: list[tuple[bytes, bytes]] = []
    found = False
    for name, value in headers:
        if not found and name.lower() == b"vary":
            found = True
            names = {part.strip().lower() for part in value.split(b",")}
            if b"origin" not in names and b"*" not in names:
                value = value + b", Origin"
        merged.append((name, value))
    if not found:
        merged.append((b"vary", b"Origin"))
    return merged
