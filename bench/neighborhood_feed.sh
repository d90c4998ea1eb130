#!/usr/bin/env bash
# Feed latency of the neighborhood server over 1,000,000 posts spread over a
# city-sized set of H3 cells, radius 3 km, on SQLite and on PostgreSQL.
# Prints one line per store with p50/p99 of the SQL feed query and of the
# whole feed page (see crates/neighborhood/examples/feed_bench.rs).
#
#   bench/neighborhood_feed.sh                       # 1M posts, 2000 queries, both stores
#   bench/neighborhood_feed.sh --posts 100000        # smaller
#   PG_URL=postgres://postgres@127.0.0.1:5432/test bench/neighborhood_feed.sh
#
# PostgreSQL runs in a fresh schema nb_bench_<random>, dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=1000000
QUERIES=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --posts) POSTS="$2"; shift 2 ;;
    --queries) QUERIES="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build -q --release -p porchlight-neighborhood --example feed_bench
BIN=target/release/examples/feed_bench
DIR=$(mktemp -d)
SCHEMA="nb_bench_$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cleanup() {
  rm -rf "$DIR"
  psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT
echo "== SQLite"
"$BIN" "sqlite://$DIR/nb.db?mode=rwc" --posts "$POSTS" --queries "$QUERIES"
echo "== PostgreSQL"
if psql -q "$PG_URL" -c "CREATE SCHEMA $SCHEMA" >/dev/null; then
  psql -q "$PG_URL" -c "SELECT 1" >/dev/null
  "$BIN" "$PG_URL?options=-c%20search_path%3D$SCHEMA" --posts "$POSTS" --queries "$QUERIES"
else
  echo "PostgreSQL at $PG_URL unreachable; skipped" >&2
fi
