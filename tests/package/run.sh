#!/usr/bin/env bash
# The Debian package, end to end: builds it (debug, reusing the workspace's debug artifacts) with
# no network at all, inspects it with dpkg-deb (control fields, maintainer scripts, every file),
# runs the extracted `flatlab --version`, then installs it with `dpkg --root` into a throwaway root
# where its maintainer scripts run chrooted: the capabilities land on /usr/bin/flatlab only, the
# installed CLI runs and finds the signing key where the package put it, and remove and purge
# leave a user's plans alone.
#
#   tests/package/run.sh                      build, then check
#   PACKAGE_DEB=path/to.deb tests/package/run.sh   check a package built already (a release one)
#
# Prints `package: N passed, N failed`. The throwaway root needs root (chroot); without it those
# checks are skipped and said so (tests/lib/required.sh: as root or in CI nothing is skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok    $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*" >&2; }
check() { # check "what" command...: one check, passes when the command succeeds
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  echo "package: $passed passed, $failed failed"
  exit $((failed > 0))
}
source tests/lib/required.sh
# A part that cannot run here: a failed check where every test must run, else a note.
cannot_check() {
  if must_run; then bad "cannot run here, and every test must run here (root or CI): $*"; else echo "package: skipped: $*"; fi
}

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)

# --- build --------------------------------------------------------------------------------------
if [[ -n "${PACKAGE_DEB:-}" ]]; then
  deb=$PACKAGE_DEB
  echo "package: checking $deb"
else
  ./scripts/setup-debian.sh # now, while there is a network, so that the build below needs none
  echo "package: building the package (debug) with no network"
  start=$SECONDS
  if [[ $(id -u) -eq 0 ]] && unshare --net true 2>/dev/null; then
    # A network namespace with only a loopback that is down: any download fails the build.
    deb=$(unshare --net -- ./scripts/package-deb.sh --debug 2>"$work/build.log") \
      || { tail -40 "$work/build.log" >&2; bad "the package builds with no network"; finish; }
    ok "the package builds with no network ($((SECONDS - start)) s)"
  else
    echo "package: not root: building with the network as it is (cannot prove no download)"
    deb=$(./scripts/package-deb.sh --debug 2>"$work/build.log") \
      || { tail -40 "$work/build.log" >&2; bad "the package builds"; finish; }
    ok "the package builds ($((SECONDS - start)) s)"
  fi
fi
[[ -f $deb ]] || { bad "the package is at $deb"; finish; }
revision=$(git rev-parse --short=12 HEAD) # the commit the package was built from
check "the file is named flatlab_${version}_${arch}.deb" test "$(basename "$deb")" = "flatlab_${version}_${arch}.deb"
echo "package: $(du -h "$deb" | cut -f1) $deb"

# --- control fields ----------------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
depends=$(field Depends)
has_dep() { tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/[ (].*//' | grep -qx "$1"; }
check "Package: flatlab" test "$(field Package)" = flatlab
check "Version: $version, as in package.json" test "$(field Version)" = "$version"
check "Cargo.toml's workspace version is $version too" \
  test "$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)" = "$version"
check "Architecture: $arch" test "$(field Architecture)" = "$arch"
for dep in libwebkit2gtk-4.1-0 libgtk-3-0 ipxe libcap2-bin; do
  check "Depends has $dep" has_dep "$dep"
done
check "Maintainer has a name and an address" grep -qE '^[^<]+ <[^@ ]+@[^> ]+>$' <<<"$(field Maintainer)"
check "Section: admin" test "$(field Section)" = admin
check "Description has a summary and a long text" test "$(field Description | wc -l)" -ge 2

# --- maintainer scripts ------------------------------------------------------------------------
dpkg-deb -e "$deb" "$work/control"
check "the maintainer scripts are postinst and postrm" \
  test "$(cd "$work/control" && ls | grep -vxE 'control|md5sums' | tr '\n' ' ')" = "postinst postrm "
check "postinst is packaging/postinst" cmp -s "$work/control/postinst" packaging/postinst
check "postrm is packaging/postrm" cmp -s "$work/control/postrm" packaging/postrm
code() { grep -vE '^\s*(#|$)' "$@"; } # the scripts without comments
check "postinst runs setcap cap_net_bind_service,cap_net_raw+ep /usr/bin/flatlab" \
  grep -qE '^\s*(if ! )?setcap cap_net_bind_service,cap_net_raw\+ep /usr/bin/flatlab;' "$work/control/postinst"
check "every setcap in the scripts is on /usr/bin/flatlab alone" \
  test -z "$(code "$work/control/postinst" "$work/control/postrm" | grep -oE 'setcap [^ ]+ [^ ;"]+' | grep -vx 'setcap cap_net_bind_service,cap_net_raw+ep /usr/bin/flatlab')"
check "no maintainer script touches flatlab-desktop" \
  test -z "$(code "$work/control/postinst" "$work/control/postrm" | grep flatlab-desktop)"
check "the maintainer scripts pass sh -n" sh -n "$work/control/postinst" "$work/control/postrm"

# --- files -------------------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $1, $6}' | sed 's| \./| |' | sort -k2 >"$work/files"
icons=(16 24 32 48 64 128 256 512)
{
  echo "-rwxr-xr-x usr/bin/flatlab"
  echo "-rwxr-xr-x usr/bin/flatlab-desktop"
  echo "-rw-r--r-- usr/share/applications/Flatlab.desktop"
  echo "-rw-r--r-- usr/share/doc/flatlab/changelog.gz"
  echo "-rw-r--r-- usr/share/doc/flatlab/copyright"
  echo "-rw-r--r-- usr/share/flatlab/Flatcar_Image_Signing_Key.asc"
  echo "-rw-r--r-- usr/share/lintian/overrides/flatlab"
  for s in "${icons[@]}"; do echo "-rw-r--r-- usr/share/icons/hicolor/${s}x${s}/apps/flatlab-desktop.png"; done
} | sort -k2 >"$work/expected"
if diff -u "$work/expected" "$work/files" >"$work/files.diff"; then
  ok "the package holds exactly its ${#icons[@]} icons and 7 other files, with their modes"
else
  cat "$work/files.diff" >&2
  bad "the package holds exactly the expected files"
fi

x=$work/extracted
dpkg-deb -x "$deb" "$x"
check "the signing key is assets/Flatcar_Image_Signing_Key.asc" \
  cmp -s "$x/usr/share/flatlab/Flatcar_Image_Signing_Key.asc" assets/Flatcar_Image_Signing_Key.asc
check "the copyright file is packaging/copyright" cmp -s "$x/usr/share/doc/flatlab/copyright" packaging/copyright
zcat "$x/usr/share/doc/flatlab/changelog.gz" >"$work/changelog"
check "the changelog is packaging/changelog" cmp -s "$work/changelog" packaging/changelog
check "the changelog's newest entry is $version" test "$(dpkg-parsechangelog -l "$work/changelog" -S Version)" = "$version"
check "CHANGELOG.md's newest entry is $version" test "$(grep -m1 -oP '^## \K[0-9][^ ]*' CHANGELOG.md)" = "$version"
for s in "${icons[@]}"; do
  check "the ${s}x${s} icon is a ${s} x ${s} PNG" \
    grep -q "PNG image data, $s x $s," <<<"$(file "$x/usr/share/icons/hicolor/${s}x${s}/apps/flatlab-desktop.png")"
done
desktop=$x/usr/share/applications/Flatlab.desktop
check "the desktop entry runs flatlab-desktop" grep -qx 'Exec=flatlab-desktop' "$desktop"
check "the desktop entry's icon is flatlab-desktop" grep -qx 'Icon=flatlab-desktop' "$desktop"
if command -v desktop-file-validate >/dev/null; then
  check "desktop-file-validate accepts the desktop entry without a hint" test -z "$(desktop-file-validate "$desktop" 2>&1)"
fi

# lintian (scripts/setup-debian.sh installs it). A debug package keeps its symbols on purpose;
# any other error lintian reports fails the test.
if command -v lintian >/dev/null; then
  suppress=()
  [[ $deb == */debug/* ]] && suppress=(--suppress-tags unstripped-binary-or-object)
  lintian "${suppress[@]}" "$deb" >"$work/lintian.log" 2>&1 || true
  sed 's/^/      lintian: /' "$work/lintian.log"
  check "lintian reports no errors" test -z "$(grep '^E:' "$work/lintian.log")"
else
  cannot_check "lintian is not installed (apt install lintian)"
fi

# --- the extracted binaries --------------------------------------------------------------------
line=$("$x/usr/bin/flatlab" --version)
check "the packaged flatlab --version says 'flatlab $version ($revision)' (got '$line')" \
  test "$line" = "flatlab $version ($revision)"

# The packaged app (with the bundler's patch) starts under Xvfb, and its About box, read through
# tauri-driver, shows the same version and revision as the CLI.
if command -v Xvfb >/dev/null && command -v tauri-driver >/dev/null && command -v WebKitWebDriver >/dev/null; then
  source tests/e2e/driver.sh
  start_display "$work/xvfb.log"
  app=$work/app
  mkdir -p "$app/home" "$app/data"
  HOME=$app/home XDG_DATA_HOME=$app/data start_driver "$work/tauri-driver.log"
  about=$(PACKAGE_APP=$x/usr/bin/flatlab-desktop PACKAGE_DRIVER=$driver \
    timeout 90 node tests/package/about.mjs 2>"$work/about.err") || { cat "$work/about.err" >&2; about=""; }
  check "the packaged app's About box shows version $version (got '$about')" \
    test "$(node -p 'JSON.parse(process.argv[1]).version' "$about" 2>/dev/null)" = "$version"
  check "the packaged app's About box shows revision $revision, as the CLI does" \
    test "$(node -p 'JSON.parse(process.argv[1]).revision' "$about" 2>/dev/null)" = "$revision"
  check "the packaged app made its database in \$XDG_DATA_HOME/flatlab" test -s "$app/data/flatlab/flatlab.db"
else
  cannot_check "the packaged app's About box: Xvfb, tauri-driver or WebKitWebDriver is missing"
fi

# --- apt, simulated on a bare system ------------------------------------------------------------
# apt-get -s with an empty dpkg status: what `apt install ./flatlab_*.deb` pulls onto a system
# that has nothing yet, resolved against this machine's package lists. Installs nothing.
if apt-cache show ipxe libwebkit2gtk-4.1-0 >/dev/null 2>&1; then
  : >"$work/empty-status"
  apt-get install -s -o Dir::State::status="$work/empty-status" "$(realpath "$deb")" >"$work/apt.log" 2>&1 || true
  for p in flatlab libwebkit2gtk-4.1-0 libgtk-3-0 ipxe libcap2-bin; do
    check "apt install ./$(basename "$deb") on a bare system installs $p" grep -q "^Inst $p " "$work/apt.log"
  done
else
  cannot_check "the simulated apt install: no package lists (apt-get update)"
fi

# --- installed into a throwaway root -----------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
  cannot_check "the throwaway root needs root (dpkg --root runs the scripts chrooted)"
  finish
fi
r=$work/root
mkdir -p "$r"/{bin,tmp,etc,var/lib/dpkg/info,var/lib/dpkg/updates,home/user/.local/share/flatlab}
touch "$r/var/lib/dpkg/status" "$r/var/lib/dpkg/available"
# The least a root needs to run the maintainer scripts and the CLI: busybox's sh and cat, and
# setcap and flatlab with their shared libraries (from this machine).
cp /bin/busybox "$r/bin/"
for applet in sh cat echo; do ln -s busybox "$r/bin/$applet"; done
libs() { ldd "$1" | grep -oE '/[^ ]+'; }
for f in "$(command -v setcap)" $(libs "$(command -v setcap)") $(libs "$x/usr/bin/flatlab"); do
  mkdir -p "$r$(dirname "$f")"
  cp -Ln "$f" "$r$f"
done
echo "plans" >"$r/home/user/.local/share/flatlab/flatlab.db"
mkdir -p "$r/home/user/.local/share/dev.flatlab.desktop"
echo "draft" >"$r/home/user/.local/share/dev.flatlab.desktop/draft"

dpkg_root() { dpkg --root="$r" --force-depends "$@"; }
if dpkg_root -i "$deb" >"$work/install.log" 2>&1; then ok "dpkg installs it into a throwaway root"; else
  cat "$work/install.log" >&2
  bad "dpkg installs it into a throwaway root"
  finish
fi
check "dpkg --verify finds every installed file intact" dpkg --root="$r" --verify flatlab
check "postinst ran without a setcap failure" test -z "$(grep 'could not give' "$work/install.log")"
check "the installed /usr/bin/flatlab has cap_net_bind_service,cap_net_raw=ep" \
  test "$(getcap "$r/usr/bin/flatlab" | awk '{print $2}')" = "cap_net_bind_service,cap_net_raw=ep"
check "the installed /usr/bin/flatlab-desktop has no capabilities" test -z "$(getcap "$r/usr/bin/flatlab-desktop")"
check "the installed flatlab --version (in the root) says 'flatlab $version ($revision)'" \
  test "$(chroot "$r" /usr/bin/flatlab --version)" = "flatlab $version ($revision)"
# The CLI reads the key from /usr/share/flatlab (the checkout's assets/ is not in the root): it
# verifies an empty mirror with it, and names that file when the file is spoilt.
mkdir -p "$r/tmp/mirror"
check "the installed flatlab reads the signing key it was installed with" \
  chroot "$r" /usr/bin/flatlab mirror verify /tmp/mirror 2>/dev/null
key=$r/usr/share/flatlab/Flatcar_Image_Signing_Key.asc
cp "$key" "$work/key"
echo "not a key" >"$key"
if chroot "$r" /usr/bin/flatlab mirror verify /tmp/mirror 2>"$work/verify.err"; then
  bad "a spoilt /usr/share/flatlab key is noticed"
else
  check "a spoilt key is reported as /usr/share/flatlab/Flatcar_Image_Signing_Key.asc" \
    grep -q "/usr/share/flatlab/Flatcar_Image_Signing_Key.asc" "$work/verify.err"
fi
cp "$work/key" "$key"

dpkg_root -i "$deb" >"$work/reinstall.log" 2>&1 && ok "reinstalling (an upgrade's path) works" \
  || { cat "$work/reinstall.log" >&2; bad "reinstalling works"; }
check "after reinstalling, /usr/bin/flatlab has its capabilities again" \
  test "$(getcap "$r/usr/bin/flatlab" | awk '{print $2}')" = "cap_net_bind_service,cap_net_raw=ep"

dpkg_root -r flatlab >"$work/remove.log" 2>&1 && ok "dpkg removes it" || { cat "$work/remove.log" >&2; bad "dpkg removes it"; }
check "remove deletes the package's files" test ! -e "$r/usr/bin/flatlab" -a ! -e "$r/usr/bin/flatlab-desktop"
dpkg_root -P flatlab >"$work/purge.log" 2>&1 && ok "dpkg purges it" || { cat "$work/purge.log" >&2; bad "dpkg purges it"; }
check "purge says where the plans stay" grep -q "~/.local/share/flatlab/" "$work/purge.log"
check "purge says how to remove them" grep -q "rm -rf ~/.local/share/flatlab" "$work/purge.log"
check "the user's plans and drafts survive remove and purge" \
  test "$(cat "$r/home/user/.local/share/flatlab/flatlab.db" "$r/home/user/.local/share/dev.flatlab.desktop/draft")" = "plans
draft"
gone() { [[ "$(dpkg-query --admindir="$r/var/lib/dpkg" -W -f='${db:Status-Status}' flatlab 2>/dev/null)" =~ ^(not-installed)?$ ]]; }
check "dpkg no longer knows the package" gone
finish
