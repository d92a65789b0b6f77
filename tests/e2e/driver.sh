# Sourced by the scripts that drive the real app (tests/e2e/run.sh, tests/package/run.sh):
# a virtual display and tauri-driver, both added to the caller's `pids` for its cleanup.

# start_display LOG: starts Xvfb (1280x800, the app's window size) on a free-looking display
# number and exports DISPLAY, plus the WebKit settings the app needs under Xvfb.
start_display() {
  local log=$1 display
  display=:$((90 + RANDOM % 200))
  Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do [[ -e /tmp/.X11-unix/X${display#:} ]] && break; sleep 0.1; done
  export DISPLAY=$display WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1
}

# start_driver LOG [PREFIX...]: starts tauri-driver (run through PREFIX, such as `ip netns exec
# NS`) on a random port, waits until it answers, and sets `driver` to its URL.
start_driver() {
  local log=$1 port
  shift
  port=$((4500 + RANDOM % 1000))
  "$@" tauri-driver --port "$port" --native-port $((port + 1)) >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do "$@" curl -sf "http://127.0.0.1:$port/status" >/dev/null && break; sleep 0.1; done
  driver=http://127.0.0.1:$port
}
