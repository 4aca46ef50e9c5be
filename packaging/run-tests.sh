#!/usr/bin/env bash
# Sets up a fresh Debian 12 or 13 machine, builds everything and runs the whole
# test suite; prints how long each phase took. Under CI=true the suite also
# runs on Debian 13 in a debootstrap root when the host is Debian 12
# (tests/packaging/release_suite.sh): that leg starts in the background right
# after the set-up, at a lower priority, and CTest's entry suite_debian13 waits
# for its result.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
# When the whole run started: the Debian 13 leg keeps within CI's time limit from it.
export SMX_SUITE_STARTED="${SMX_SUITE_STARTED:-$t0}"
packaging/install-deps.sh
t1=$(date +%s)

build_dir="${BUILD_DIR:-build}"
leg_pid=""
if tests/packaging/release_suite.sh --wanted trixie; then
  mkdir -p "$build_dir/release-trixie"
  leg=$(realpath "$build_dir/release-trixie")
  rm -f "$leg/status" "$leg/pid" "$leg/started"
  date +%s >"$leg/started"
  # The status is written however the leg ends; the waiting CTest entry reads it.
  ( rc=0
    SMX_RELEASE_DETACHED=1 nice -n 10 tests/packaging/release_suite.sh "$PWD" "$(realpath "$build_dir")" trixie \
      >"$leg/suite.log" 2>&1 || rc=$?
    echo "$rc" >"$leg/status" ) &
  leg_pid=$!
  echo "$leg_pid" >"$leg/pid"
  export SMX_RELEASE_BACKGROUND="$leg"
  echo "run-tests: the Debian 13 leg runs in the background (log: $leg/suite.log)"
  # Ending early (a failed build, Ctrl-C) stops the leg too, cleaning up its root.
  trap '[ -n "$leg_pid" ] && kill -0 "$leg_pid" 2>/dev/null && { pkill -TERM -P "$leg_pid" || true; wait "$leg_pid" || true; }' EXIT
fi

packaging/build.sh
t2=$(date +%s)
cd "$build_dir"
rc=0
QT_QPA_PLATFORM=offscreen ctest --output-on-failure || rc=$?
t3=$(date +%s)
echo "run-tests: install-deps $((t1 - t0)) s, build $((t2 - t1)) s, ctest $((t3 - t2)) s (exit status $rc)"
if [ -n "$leg_pid" ] && [ -f "$SMX_RELEASE_BACKGROUND/suite.log" ]; then
  grep 'release_suite' "$SMX_RELEASE_BACKGROUND/suite.log" | sed 's/^/run-tests: /' || true
fi
exit "$rc"
