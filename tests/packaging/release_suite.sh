#!/usr/bin/env bash
# The whole test suite on another Debian release: a fresh root of that release
# made with debootstrap, this source tree copied into it (the working tree's
# files as git lists them, never a build folder), and the README's test command
# packaging/run-tests.sh run inside it as on a fresh machine: install-deps.sh,
# build, every test (the package is made, checked and installed with apt in a
# root of that release again, nested in this one).
#
#   tests/packaging/release_suite.sh SOURCE_DIR BUILD_DIR SUITE    # e.g. trixie
#   tests/packaging/release_suite.sh --wanted SUITE    # exit 0 where the leg should run here
#
# Runs under CI=true, or where SMX_TEST_RELEASES names the suite
# (SMX_TEST_RELEASES=trixie ctest -R suite_debian13); otherwise, and on a host
# that is that release already, it skips (exit 77). Inside the root
# SMX_RELEASE_LEG is set, so the inner suite does not start a leg of its own.
# Needs root, mount rights, debootstrap and Debian's mirror (under CI=true it
# fails without them). apt's downloads are kept in SMX_RELEASE_APT_CACHE
# (default /var/cache/sparse-mixer-studio/apt-SUITE: a folder of its own, so
# the leg's apt never waits for the host's lock while both run), the compiler
# cache in SMX_RELEASE_CCACHE_DIR (default
# /var/cache/sparse-mixer-studio/ccache-SUITE), both outside the build folder,
# so a rerun downloads nothing and compiles only what changed.
# SMX_RELEASE_KEEP=1 leaves the root in BUILD_DIR/release-SUITE/root to look
# around in (rerunning this script cleans it up first).
#
# In the background: packaging/run-tests.sh starts the leg right after the
# host's set-up (nice 10, so its downloads and debootstrap overlap the host's
# build, and its compiling takes what the host's tests leave idle), with
# SMX_RELEASE_BACKGROUND=BUILD_DIR/release-SUITE. This script, run again by
# CTest (suite_debian13) with that set, then waits for that leg and reports
# its result instead of starting another.
set -euo pipefail
# Whether the leg should run on this machine: prints why not and fails where not.
leg_wanted() {  # SUITE
  local host_suite
  host_suite=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" )
  if [ -n "${SMX_RELEASE_LEG:-}" ]; then echo "this already is the $SMX_RELEASE_LEG leg (SMX_RELEASE_LEG is set)"; return 1; fi
  if [ "$host_suite" = "$1" ]; then echo "this machine is $1 already: the suite runs natively here"; return 1; fi
  [ "${CI:-}" = true ] && return 0
  [[ ",${SMX_TEST_RELEASES:-}," == *",$1,"* ]] && return 0
  echo "the $1 leg (30-45 minutes on 2 cores) runs under CI=true, or with SMX_TEST_RELEASES=$1 ctest -R suite_debian13 --output-on-failure (needs root and Debian's mirror)"
  return 1
}
if [ "${1:-}" = --wanted ]; then
  leg_wanted "${2:?usage: release_suite.sh --wanted SUITE}" >/dev/null
  exit
fi
src=$(realpath "${1:?usage: release_suite.sh SOURCE_DIR BUILD_DIR SUITE}")
build=$(realpath "${2:?}")
suite="${3:?}"
mirror=${SMX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
me="release_suite($suite)"

skip() { echo "$me: skipped: $*" >&2; exit 77; }
unable() {
  if [ "${CI:-}" = true ]; then echo "$me: FAIL: $*" >&2; exit 1; fi
  skip "$*"
}
why_not=$(leg_wanted "$suite") || skip "$why_not"

# A leg already started in the background by run-tests.sh: wait for its result.
if [ -n "${SMX_RELEASE_BACKGROUND:-}" ]; then
  bg=$SMX_RELEASE_BACKGROUND
  [ -f "$bg/started" ] || { echo "$me: FAIL: no leg was started in $bg" >&2; exit 1; }
  echo "$me: waiting for the leg started in the background at $(date -d "@$(cat "$bg/started")" +%T) (log: $bg/suite.log)"
  while [ ! -f "$bg/status" ]; do
    # The starter (run-tests.sh) writes the status when the leg ends, however it ends.
    kill -0 "$(cat "$bg/pid")" 2>/dev/null ||
      { sleep 2; [ -f "$bg/status" ] || { cat "$bg/suite.log" >&2; echo "$me: FAIL: the leg ended without a status" >&2; exit 1; }; }
    sleep 5
  done
  cat "$bg/suite.log"
  exit "$(cat "$bg/status")"
fi

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then exec sudo -n -E "$0" "$@"; fi
  unable "needs root (debootstrap, chroot, mount) or password-less sudo"
fi
command -v debootstrap >/dev/null || unable "needs debootstrap (packaging/install-deps.sh installs it)"

# CI's whole run has a time limit (90 minutes; SMX_CI_BUDGET_MINUTES, default 75, leaves
# a margin for the clean-up and CI's own set-up). run-tests.sh says when the run started (SMX_SUITE_STARTED): the leg
# starts only with 35 minutes or more left, and is stopped when the budget is
# spent, so it can never make CI overrun. Either way it reports a skip that
# says so (the release's result is then unknown, not passed); a failure inside
# the leg within the time is a failure.
limit=""
if [ "${CI:-}" = true ] && [ -n "${SMX_SUITE_STARTED:-}" ]; then
  budget_min=${SMX_CI_BUDGET_MINUTES:-75}
  limit=$((SMX_SUITE_STARTED + budget_min * 60 - $(date +%s)))
  # Run by CTest itself: below CTest's own limit for this test (TIMEOUT 4800 s),
  # which would count as a failure. (Started in the background, CTest only waits.)
  if [ "${SMX_RELEASE_DETACHED:-}" != 1 ] && [ "$limit" -gt 4500 ]; then limit=4500; fi
  [ "$limit" -ge $((${SMX_RELEASE_MIN_MINUTES:-35} * 60)) ] ||
    skip "not started: $((limit / 60)) of CI's $budget_min minutes are left, and the $suite leg needs 30-45 (run it alone: SMX_TEST_RELEASES=$suite ctest -R suite_debian13 --output-on-failure)"
fi

work="$build/release-$suite"
root="$work/root"
log="$work/leg.log"
mkdir -p "$work"

# Every mount under the root, innermost first (the inner suite's deb_install
# mounts its own root below ours; it cleans up after itself, but a killed run
# may leave them).
unmount_all() {
  local m
  [ -d "$root" ] || return 0
  for m in $(findmnt -rn -o TARGET | awk -v r="$root" 'index($0, r "/") == 1' | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}
cleanup() {
  unmount_all
  [ -d "$root" ] || return 0
  # rm --one-file-system does not stop at a bind mount of the same file system
  # (the apt cache, the compiler cache): never remove while one is left.
  if findmnt -rn -o TARGET | awk -v r="$root" 'index($0, r "/") == 1 {found=1} END {exit !found}'; then
    echo "$me: mounts are left under $root; not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}
# Every process whose root is this root (or one nested in it): the leg's, however deep.
kill_leg() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$root" | "$root"/*) kill "-$1" "${p#/proc/}" 2>/dev/null || true ;; esac
  done
}
if [ "${SMX_RELEASE_KEEP:-}" = 1 ]; then trap unmount_all EXIT; else trap cleanup EXIT; fi
# Stopped from outside (run-tests.sh ending early, Ctrl-C): stop the leg whole, then clean up (EXIT).
trap 'kill_leg TERM; sleep 10; kill_leg KILL; exit 143' TERM INT
cleanup
: >"$log"
phase() { echo "$me: $*" | tee -a "$log"; }
t_leg=$(date +%s)

# 1. A minimal root of the release, downloads kept in a cache of the leg's own.
cache=${SMX_RELEASE_APT_CACHE:-/var/cache/sparse-mixer-studio/apt-$suite}
mkdir -p "$cache/partial"
t0=$(date +%s)
debootstrap --variant=minbase --cache-dir="$cache" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; unable "debootstrap $suite failed (no access to $mirror?)"; }
# The pristine root is also the base system the inner deb_install would
# bootstrap again for its own root (BUILD_DIR/deb-test/base-SUITE.tar): hand it over.
tar -C "$root" -cf "$work/base-$suite.tar" .
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
phase "debootstrap: $(($(date +%s) - t0)) s"

# 2. What a machine has: /proc (programs find their libraries through
# /proc/self/exe; chroot and mount need it), /sys (CPU topology for LibTorch
# and OpenBLAS), a tmpfs /dev/shm; the apt and compiler caches.
mount -t proc proc "$root/proc" || unable "cannot mount /proc in the root (a container without mount rights?)"
mount -t sysfs -o ro sysfs "$root/sys" 2>/dev/null || mount --rbind /sys "$root/sys" ||
  unable "cannot mount /sys in the root"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm" || unable "cannot mount a tmpfs on /dev/shm in the root"
mount --bind "$cache" "$root/var/cache/apt/archives" ||
  echo "$me: cannot mount the download cache $cache; downloading every package" >&2
ccache_dir=${SMX_RELEASE_CCACHE_DIR:-/var/cache/sparse-mixer-studio/ccache-$suite}
mkdir -p "$ccache_dir" "$root/var/cache/ccache"
mount --bind "$ccache_dir" "$root/var/cache/ccache" || unable "cannot share the compiler cache $ccache_dir"

# 3. The source tree: the working tree's files (committed or not, what
# .gitignore leaves out stays out: build folders, caches).
t0=$(date +%s)
mkdir -p "$root/src"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
     while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
     tar --null -T - -cf -) | tar -C "$root/src" -xf -
else
  tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$root/src" -xf -
fi
mkdir -p "$root/src/build/deb-test"
mv "$work/base-$suite.tar" "$root/src/build/deb-test/base-$suite.tar"
phase "source tree copied: $(du -sh --exclude=build "$root/src" | cut -f1) in $(($(date +%s) - t0)) s"

# 4. The README's test command, inside, as root on a fresh machine.
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" SMX_REQUIRE_PACKAGE_TESTS=1 SMX_RELEASE_LEG="$suite" \
    SMX_DEBIAN_MIRROR="$mirror" CCACHE_DIR=/var/cache/ccache CCACHE_BASEDIR=/src "$@"
}
phase "running packaging/run-tests.sh in the $suite root (log: $log)"
# A leg out of time is stopped whole (ninja, ctest and the tests under them), before the root
# is unmounted.
in_root /src/packaging/run-tests.sh >>"$log" 2>&1 &
pid=$!
timed_out=0
while kill -0 "$pid" 2>/dev/null; do
  if [ -n "$limit" ] && [ "$(date +%s)" -ge $((t_leg + limit)) ]; then
    timed_out=1
    kill_leg TERM
    sleep 15
    kill_leg KILL
    break
  fi
  sleep 5
done
set +e
wait "$pid"
rc=$?
set -e
grep '^run-tests: \|tests passed\|tests failed' "$log" | sed "s/^/$me: /" || true
phase "leg: $(($(date +%s) - t_leg)) s in all, run-tests.sh exit status $rc"
if [ "$timed_out" = 1 ]; then
  tail -15 "$log" >&2
  skip "stopped after $(( $(date +%s) - t_leg )) s: CI's time ran out before the $suite leg finished (its result is unknown; log: $log)"
fi
[ "$rc" = 0 ] || { tail -60 "$log" >&2; echo "$me: FAIL: packaging/run-tests.sh failed in the $suite root (log: $log)" >&2; exit 1; }
echo "$me: OK"
