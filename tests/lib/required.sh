# Sourced by the test scripts. A test that cannot run here (not root, a program missing) says so
# and skips on a developer's machine, but fails where every test must run: as root, in CI, or
# with FLATLAB_TESTS_REQUIRE_ALL=1 (scripts/test.sh sets it there). FLATLAB_TESTS_REQUIRE_ALL=0
# lets it skip anywhere.

must_run() {
  case "${FLATLAB_TESTS_REQUIRE_ALL:-}" in
    1) return 0 ;;
    0) return 1 ;;
  esac
  [[ -n ${CI:-} || $(id -u) -eq 0 ]]
}

# cannot_run NAME WHY: exits the script, failing where it must run, else skipping.
cannot_run() {
  local name=$1
  shift
  if must_run; then
    echo "$name: FAILED: cannot run here, and every test must run here (root or CI): $*" >&2
    exit 1
  fi
  echo "$name: skipped: $*"
  exit 0
}
