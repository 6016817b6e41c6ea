#!/usr/bin/env bash
# Vendors the files Strawberry's GraphiQL page loads, so GraphiQL works with no network beyond the
# Treegate server (the page normally loads them from a public CDN).
#
# Provenance: each package is fetched from the npm registry with `npm pack NAME@VERSION` (npm checks
# the tarball against the registry's integrity hash) and only the files the page loads, plus the
# package's license, are copied to gql/static/graphiql/NAME@VERSION/PATH: the same NAME@VERSION/PATH
# the CDN URLs in Strawberry's template use, so the template's SRI `integrity` hashes stay valid. The
# script checks every file against those hashes and fails on any difference.
#
# Versions are the ones strawberry-graphql (0.341.2, see uv.lock) names in
# strawberry/static/graphiql.html. gql/graphiql.py refuses to start if the template names others:
# after a Strawberry upgrade, update PACKAGES below and ASSETS in gql/graphiql.py, and re-run this.
#
# Licenses (all MIT):
#   react 18.2.0, react-dom 18.2.0    Meta Platforms (Facebook), LICENSE from each package
#   js-cookie 3.0.5                   Klaus Hartl, Fagner Brack, GitHub Contributors, LICENSE from the package
#   graphiql 3.8.3                    GraphQL Contributors, LICENSE from the package
#   @graphiql/plugin-explorer 1.0.2   GraphQL Contributors. Its package ships no LICENSE file; its
#                                     package.json says MIT and names the graphql/graphiql monorepo,
#                                     whose license is the one graphiql ships: copied as its LICENSE.
#                                     Its UMD bundle includes graphiql-explorer 0.9.0 (OneGraph, MIT):
#                                     that package's LICENSE is copied as LICENSE.graphiql-explorer.
#   The bundles keep the license comments of the code they include.
#
# Usage: scripts/vendor-graphiql.sh   (needs npm, tar, openssl; run from anywhere)
set -euo pipefail

cd "$(dirname "$0")/.."
DEST=gql/static/graphiql
TEMPLATE=$(.venv/bin/python -c 'import pathlib, strawberry; print(pathlib.Path(strawberry.__file__).parent / "static/graphiql.html")')

# NAME@VERSION and the files the page loads from it.
PACKAGES=(
    "react@18.2.0 umd/react.production.min.js"
    "react-dom@18.2.0 umd/react-dom.production.min.js"
    "js-cookie@3.0.5 dist/js.cookie.min.js"
    "graphiql@3.8.3 graphiql.min.css graphiql.min.js"
    "@graphiql/plugin-explorer@1.0.2 dist/style.css dist/index.umd.js"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() { # NAME@VERSION -> prints the folder holding the unpacked package
    local spec=$1 dir
    dir="$work/$(echo "$spec" | tr '/@' '__')"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar -xzf ./*.tgz)
    echo "$dir/package"
}

rm -rf "$DEST"
for entry in "${PACKAGES[@]}"; do
    read -r spec files <<<"$entry"
    src=$(unpack "$spec")
    for file in $files; do
        mkdir -p "$(dirname "$DEST/$spec/$file")"
        cp "$src/$file" "$DEST/$spec/$file"
        url="https://unpkg.com/$spec/$file"
        expected=$(grep -A3 -F "\"$url\"" "$TEMPLATE" | grep -o 'sha384-[A-Za-z0-9+/=]*' | head -1)
        actual="sha384-$(openssl dgst -sha384 -binary "$DEST/$spec/$file" | openssl base64 -A)"
        if [[ -z "$expected" ]]; then
            echo "error: $TEMPLATE does not load $url" >&2
            exit 1
        fi
        if [[ "$expected" != "$actual" ]]; then
            echo "error: $spec/$file is $actual, the template expects $expected" >&2
            exit 1
        fi
        echo "ok  $spec/$file  $(wc -c <"$DEST/$spec/$file") bytes  $actual"
    done
    if [[ -f "$src/LICENSE" ]]; then
        cp "$src/LICENSE" "$DEST/$spec/LICENSE"
    fi
done

# @graphiql/plugin-explorer ships no LICENSE (see above).
explorer="$DEST/@graphiql/plugin-explorer@1.0.2"
cp "$DEST/graphiql@3.8.3/LICENSE" "$explorer/LICENSE"
cp "$(unpack graphiql-explorer@0.9.0)/LICENSE" "$explorer/LICENSE.graphiql-explorer"

echo "vendored into $DEST:"
find "$DEST" -type f | sort
