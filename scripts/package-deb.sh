#!/usr/bin/env bash
# Builds Flatlab's Debian package with the Tauri bundler: the desktop app (flatlab-desktop), the
# flatlab CLI (also the app's boot-server sidecar, /usr/bin/flatlab), the Flatcar signing key, the
# changelog, copyright and maintainer scripts from packaging/. Nothing is downloaded: the deb
# bundler needs no tools beyond this machine's.
#
#   scripts/package-deb.sh            release build, what users install (takes a while)
#   scripts/package-deb.sh --debug    debug build, quicker; reuses the workspace's debug artifacts
#
# Prints the path of the package: target/<profile>/bundle/deb/flatlab_<version>_<arch>.deb
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
tauri_flags=()
case "${1:-}" in
  "") ;;
  --debug) profile=debug tauri_flags=(--debug) ;;
  *) echo "usage: $0 [--debug]" >&2; exit 2 ;;
esac

./scripts/setup-debian.sh >&2

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
# crates/api/build.rs takes the revision from FLATLAB_GIT_REVISION, else from git.
revision=${FLATLAB_GIT_REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  echo "package: warning: the working tree has uncommitted changes; the package still says revision $revision" >&2
fi

# Both binaries come from this one run at the same HEAD, so `flatlab --version` and the app's
# About box show the same version and git revision (crates/api/build.rs).
echo "package: building the flatlab CLI ($profile) and staging it as the app's sidecar" >&2
staged=$(./scripts/stage-sidecar.sh "$profile")

target=$(realpath "${CARGO_TARGET_DIR:-target}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Debian keeps a package's changelog in /usr/share/doc/<package>/; Tauri's own `changelog` option
# would put it under the product name (doc/Flatlab). -n: no name or time stamp, same bytes each build.
gzip -9n <packaging/changelog >"$work/changelog.gz"

# Set here, not in tauri.conf.json: bundling itself (off there, so that a plain `tauri build`
# makes no package without the CLI), bundle.externalBin, and the generated changelog. With
# externalBin in tauri.conf.json every build of the app (cargo clippy/test --workspace,
# scripts/run.sh) would need the staged sidecar first, and tauri-build would copy a stale one
# over target/<profile>/flatlab.
overlay='{
  "bundle": {
    "active": true,
    "externalBin": ["binaries/flatlab"],
    "linux": { "deb": { "files": { "/usr/share/doc/flatlab/changelog.gz": "'"$work/changelog.gz"'" } } }
  }
}'

echo "package: building the UI and the desktop app ($profile)" >&2
npx tauri build "${tauri_flags[@]}" --ci --no-bundle --config "$overlay" >&2
app=$target/$profile/flatlab-desktop
# Release programs are stripped, as Debian ships them (stage-sidecar.sh strips the release CLI);
# a debug package keeps its symbols.
[[ $profile == debug ]] || strip "$app"

# Depends: the packages of the shared libraries both programs link, with the versions their
# symbols need (dpkg-shlibdeps, as debhelper does), plus tauri.conf.json's (ipxe, libcap2-bin).
mkdir -p "$work/debian/flatlab/usr/bin" "$work/debian/flatlab/DEBIAN" # DEBIAN/ marks the package's root
printf 'Source: flatlab\n\nPackage: flatlab\nArchitecture: any\n' >"$work/debian/control"
ln "$app" "$work/debian/flatlab/usr/bin/flatlab-desktop" 2>/dev/null || cp "$app" "$work/debian/flatlab/usr/bin/"
ln "$staged" "$work/debian/flatlab/usr/bin/flatlab" 2>/dev/null || cp "$staged" "$work/debian/flatlab/usr/bin/flatlab"
shlibs=$(cd "$work" && dpkg-shlibdeps -O debian/flatlab/usr/bin/flatlab-desktop debian/flatlab/usr/bin/flatlab)
shlibs=${shlibs#shlibs:Depends=}
[[ -n "$shlibs" ]] || { echo "package: dpkg-shlibdeps found no shared libraries" >&2; exit 1; }
depends=$(node -e '
  const own = require("./src-tauri/tauri.conf.json").bundle.linux.deb.depends;
  const shlibs = process.argv[1].split(",").map((d) => d.trim());
  console.log(JSON.stringify([...own, ...shlibs]));
' "$shlibs")

bundle_dir=$target/$profile/bundle/deb
rm -f "$bundle_dir"/*.deb
echo "package: making the .deb (Depends: $(node -p 'JSON.parse(process.argv[1]).join(", ")' "$depends"))" >&2
npx tauri bundle "${tauri_flags[@]}" --ci --bundles deb \
  --config "$overlay" --config '{"bundle": {"linux": {"deb": {"depends": '"$depends"'}}}}' >&2

built=$(find "$bundle_dir" -maxdepth 1 -name "*_${version}_${arch}.deb" -print -quit)
[[ -n "$built" ]] || { echo "package: the bundler made no .deb in $bundle_dir" >&2; exit 1; }
deb=$bundle_dir/flatlab_${version}_${arch}.deb
# The bundler names the file after productName ("Flatlab"); Debian names it after the package.
[[ "$built" == "$deb" ]] || mv -f "$built" "$deb"
echo "package: $(du -h "$deb" | cut -f1) $deb (version $version, revision $revision)" >&2
echo "$deb"
