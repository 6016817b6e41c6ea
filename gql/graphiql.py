"""GraphiQL without a CDN: Strawberry's page, loading the copies vendored in gql/static/graphiql/.

Strawberry's template loads React, js-cookie, GraphiQL and its explorer plugin from unpkg.com, which
networks that reach only package registries cannot load. `scripts/vendor-graphiql.sh` copies the
same files from the npm registry to `gql/static/graphiql/NAME@VERSION/PATH` (the CDN's own paths, so
the template's SRI hashes still hold); this module serves them and points the page at them. If the
template stops naming exactly these URLs (a Strawberry upgrade), the app refuses to start rather
than silently sending browsers to a CDN again.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

CDN = "https://unpkg.com/"
STATIC_DIR = Path(__file__).parent / "static" / "graphiql"
STATIC_URL = "/graphql/static/graphiql"
# The paths are versioned, so a browser may keep a file for good.
CACHE_CONTROL = "public, max-age=31536000, immutable"

# Every file Strawberry's template loads, as NAME@VERSION/PATH (its URL is CDN + this).
ASSETS = (
    "react@18.2.0/umd/react.production.min.js",
    "react-dom@18.2.0/umd/react-dom.production.min.js",
    "js-cookie@3.0.5/dist/js.cookie.min.js",
    "graphiql@3.8.3/graphiql.min.css",
    "@graphiql/plugin-explorer@1.0.2/dist/style.css",
    "graphiql@3.8.3/graphiql.min.js",
    "@graphiql/plugin-explorer@1.0.2/dist/index.umd.js",
)

# A src or href attribute whose value leaves the server: http(s)://... or //...
_EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']\s*((?:https?:)?//[^"']*)""", re.IGNORECASE)


class GraphiQLTemplateError(RuntimeError):
    """Strawberry's GraphiQL template no longer matches the vendored assets."""


EXAMPLE_QUERY = """\
# Treegate: Open-Assistant's message trees and the states they move through.
# Run it with Ctrl-Enter (or the play button); the Docs and Explorer panels list everything else.
#
# Queries need no key in development. Mutations do: open Headers below and add
#   {"Authorization": "Bearer tg_..."}
# (make run prints a development admin key; treegate keys create makes others).
{
  treeStateCounts(groupBy: [STATE]) {
    state
    count
  }
  messageTreeStates(filter: {states: [GROWING]}, first: 5) {
    totalCount
    nodes {
      messageTreeId
      lang
      state
      wonPromptLotteryDate
      allowedTransitions
      rootMessage {
        text
      }
    }
  }
}
"""
"""What GraphiQL's editor opens with (a valid document: tests/http checks it). Anonymous on
purpose: GraphiQL keeps sending the operation name of the document it opened with after a person
replaces it by one without a name, which the server refuses as an unknown operation."""

_EXAMPLE = re.compile(r"const EXAMPLE_QUERY = `[^`]*`;")


def with_example_query(html: str, example: str = EXAMPLE_QUERY) -> str:
    """Strawberry's page with Treegate's example in place of GraphiQL's welcome text."""
    if len(_EXAMPLE.findall(html)) != 1:
        raise GraphiQLTemplateError(
            "Strawberry's GraphiQL template no longer defines EXAMPLE_QUERY once "
            "(was strawberry-graphql upgraded?): update gql/graphiql.py"
        )
    if "`" in example or "${" in example or "\\" in example:
        raise ValueError("the example must not hold what a JavaScript template literal reads")
    return _EXAMPLE.sub(lambda _m: f"const EXAMPLE_QUERY = `{example}`;", html)


def localize(html: str, static_url: str = STATIC_URL, static_dir: Path = STATIC_DIR) -> str:
    """Point each CDN URL in `html` at its vendored copy; raise if anything does not match."""
    for asset in ASSETS:
        url = f'"{CDN}{asset}"'
        if html.count(url) != 1:
            raise GraphiQLTemplateError(
                f"Strawberry's GraphiQL template does not load {CDN}{asset} exactly once "
                "(was strawberry-graphql upgraded?): update ASSETS in gql/graphiql.py and "
                "re-run scripts/vendor-graphiql.sh"
            )
        if not (static_dir / asset).is_file():
            raise GraphiQLTemplateError(
                f"{static_dir / asset} is missing: run scripts/vendor-graphiql.sh"
            )
        html = html.replace(url, f'"{static_url}/{asset}"')
    external = _EXTERNAL.findall(html)
    if external:
        raise GraphiQLTemplateError(
            "Strawberry's GraphiQL template loads files that are not vendored: "
            + ", ".join(external)
            + " (update ASSETS in gql/graphiql.py and scripts/vendor-graphiql.sh)"
        )
    return html


class ImmutableStaticFiles(StaticFiles):
    """Static files with a long `Cache-Control` (on 304 answers too)."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response


def static_mount() -> Mount:
    """The route serving the vendored files under STATIC_URL."""
    return Mount(STATIC_URL, app=ImmutableStaticFiles(directory=STATIC_DIR), name="graphiql")
