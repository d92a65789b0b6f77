#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds the Flatlab desktop app and starts it.
# The app opens $XDG_DATA_HOME/flatlab/flatlab.db (~/.local/share/flatlab/flatlab.db), creating it
# with a demo plan on first start. Set FLATLAB_DB to use another database file.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
echo "run: building the desktop app (the first build takes several minutes)"
npx tauri build --debug --no-bundle
cargo build -q -p flatlab-cli
echo "run: the CLI is at target/debug/flatlab; starting the desktop app"
exec ./target/debug/flatlab-desktop "$@"
