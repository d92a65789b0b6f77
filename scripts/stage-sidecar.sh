#!/usr/bin/env bash
# Builds the flatlab CLI and puts a copy where Tauri's bundle.externalBin looks for the app's
# boot-server sidecar: src-tauri/binaries/flatlab-<target triple> (gitignored). The Debian package
# installs it as /usr/bin/flatlab, beside /usr/bin/flatlab-desktop. A release copy is stripped.
#
#   scripts/stage-sidecar.sh [debug|release]     prints the staged file's path
#
# When a build has bundle.externalBin set (scripts/package-deb.sh sets it), tauri-build copies the
# staged file over target/<profile>/flatlab; staging right after building keeps them the same.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-debug}
case $profile in
  debug) flags=() ;;
  release) flags=(--release) ;;
  *) echo "usage: $0 [debug|release]" >&2; exit 2 ;;
esac

cargo build -q --locked -p flatlab-cli "${flags[@]}"
built=${CARGO_TARGET_DIR:-target}/$profile/flatlab
triple=$(rustc -vV | sed -n 's/^host: //p')
staged=src-tauri/binaries/flatlab-$triple
mkdir -p src-tauri/binaries
# A release sidecar is stripped, as Debian ships its programs (the same bytes for the same build).
if [[ $profile == release ]]; then strip -o "$staged.tmp" "$built"; else cp "$built" "$staged.tmp"; fi
# Replace it only when it changed: tauri-build reruns, and the app is rebuilt, whenever it does.
if cmp -s "$staged.tmp" "$staged"; then rm -f "$staged.tmp"; else mv -f "$staged.tmp" "$staged"; fi
echo "$staged"
