#!/usr/bin/env bash
# Sets up a fresh Debian 12 or 13 machine, builds everything and runs the whole
# test suite; prints how long each phase took. Under CI=true the suite also
# runs on Debian 13 in a debootstrap root when the host is Debian 12 (CTest
# entry suite_debian13, tests/packaging/release_suite.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
# When the whole run started: the Debian 13 leg keeps within CI's time limit from it.
export SMX_SUITE_STARTED="${SMX_SUITE_STARTED:-$t0}"
packaging/install-deps.sh
t1=$(date +%s)
packaging/build.sh
t2=$(date +%s)
cd "${BUILD_DIR:-build}"
rc=0
QT_QPA_PLATFORM=offscreen ctest --output-on-failure || rc=$?
t3=$(date +%s)
echo "run-tests: install-deps $((t1 - t0)) s, build $((t2 - t1)) s, ctest $((t3 - t2)) s (exit status $rc)"
exit "$rc"
