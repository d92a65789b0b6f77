#!/usr/bin/env bash
# Regenerates crates/store/.sqlx (the offline query data the build uses) from the migrations.
# Usage: scripts/sqlx-prepare.sh [--check]   (--check: fail if the committed data is stale)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in crates/store/migrations/*.sql; do sqlite3 "$tmp/dev.db" < "$m"; done
out="$PWD/crates/store/.sqlx"
[[ "${1:-}" == "--check" ]] && out="$tmp/sqlx"
rm -rf "$out" && mkdir -p "$out"
# Touch the crate so the macros run again, then check it online against the fresh database. The
# file's old time comes back when the script ends (the EXIT trap): the builds made before and
# after this check stay fresh instead of rebuilding the store crate and everything above it.
lib=crates/store/src/lib.rs
stamp=$(stat -c %.9Y "$lib")
trap 'touch -d "@$stamp" "$lib"; rm -rf "$tmp"' EXIT
touch "$lib"
DATABASE_URL="sqlite://$tmp/dev.db" SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" \
  cargo check -q -p flatlab-store --all-targets
if [[ "${1:-}" == "--check" ]]; then
  if ! diff -r crates/store/.sqlx "$out" >/dev/null; then
    echo "crates/store/.sqlx is stale: run scripts/sqlx-prepare.sh and commit the result" >&2
    diff -r crates/store/.sqlx "$out" >&2 || true
    exit 1
  fi
  echo "crates/store/.sqlx is up to date"
fi
