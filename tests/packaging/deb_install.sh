#!/usr/bin/env bash
# Installs the .deb on a fresh root of this machine's Debian release (12 or 13,
# from /etc/os-release: the .deb is built for the release it is built on) and
# uses what it installed, as a user would: `apt install ./file.deb` in a debootstrap chroot (minbase, with
# nothing of the project's dependencies), then smx and smx-studio from /usr/bin
# run by an ordinary user with the default (XDG) data folder.
#
#   tests/packaging/deb_install.sh BUILD_DIR    # BUILD_DIR/package/*.deb (tests/packaging/make_deb.sh)
#
# Needs root, debootstrap and Debian's mirror. Where those are missing it skips
# (exit 77), except under CI=true or SMX_REQUIRE_PACKAGE_TESTS=1, where it fails.
# The pristine base system is kept as BUILD_DIR/deb-test/base-SUITE.tar and unpacked
# afresh for every run (SMX_DEB_TEST_FRESH=1 bootstraps it again);
# SMX_DEB_TEST_KEEP=1 leaves the installed root in BUILD_DIR/deb-test/root to
# look around in (chroot it, or rerun this script to clean it up).
set -euo pipefail
build=$(realpath "${1:?usage: deb_install.sh BUILD_DIR}")
suite=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" )
os_version=$( . /etc/os-release 2>/dev/null && echo "${VERSION_ID:-}" )
mirror=${SMX_DEBIAN_MIRROR:-http://deb.debian.org/debian}

unable() {
  if [ "${CI:-}" = true ] || [ "${SMX_REQUIRE_PACKAGE_TESTS:-}" = 1 ]; then
    echo "deb_install: FAIL: $*" >&2
    exit 1
  fi
  echo "deb_install: skipped: $*" >&2
  exit 77
}
if [ "$(id -u)" != 0 ]; then
  # As install-deps.sh does: a user with password-less sudo runs it as root.
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then exec sudo -n -E "$0" "$@"; fi
  unable "needs root (chroot, mount) or password-less sudo"
fi
command -v debootstrap >/dev/null || unable "needs debootstrap (packaging/install-deps.sh installs it)"
case "$suite" in
  bookworm|trixie) ;;
  *) unable "this is ${suite:-an unknown release}: Debian 12 (bookworm) or 13 (trixie) needed (/etc/os-release)" ;;
esac
deb=$(ls "$build"/package/sparse-mixer-studio_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || { echo "deb_install: FAIL: no .deb in $build/package (run make_deb.sh or packaging/make-deb.sh)" >&2; exit 1; }
# The package names the release it was built for (0.1.0-1+deb13): this one.
deb_version=$(dpkg-deb -f "$deb" Version)
[[ "$deb_version" == *"+deb$os_version" ]] ||
  { echo "deb_install: FAIL: $(basename "$deb") ($deb_version) is not a package for Debian $os_version ($suite)" >&2; exit 1; }

work="$build/deb-test"
root="$work/root"
mkdir -p "$work"
unmount() {
  for m in "$root/var/cache/apt/archives" "$root/proc"; do
    if mountpoint -q "$m" 2>/dev/null; then umount -R "$m" 2>/dev/null || umount -l "$m"; fi
  done
}
cleanup() {
  unmount
  [ -d "$root" ] || return 0
  # rm --one-file-system does not stop at a bind mount of the same file system
  # (the apt cache): never remove while a mount is left under the root.
  if findmnt -rn -o TARGET | awk -v r="$root" 'index($0, r "/") == 1 {found=1} END {exit !found}'; then
    echo "deb_install: mounts are left under $root; not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}
if [ "${SMX_DEB_TEST_KEEP:-}" = 1 ]; then trap unmount EXIT; else trap cleanup EXIT; fi
cleanup

# Downloaded packages are shared with the host's apt cache: the install is from
# scratch, only the downloads are saved.
cache=/var/cache/apt/archives
base="$work/base-$suite.tar"
if [ ! -f "$base" ] || [ "${SMX_DEB_TEST_FRESH:-}" = 1 ]; then
  echo "deb_install: bootstrapping a minimal Debian $suite root"
  t0=$(date +%s)
  debootstrap --variant=minbase --cache-dir="$cache" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; unable "debootstrap failed (no access to $mirror?)"; }
  tar -C "$root" -cf "$base.part" . && mv "$base.part" "$base"
  echo "deb_install: base system in $(($(date +%s) - t0)) s"
else
  mkdir -p "$root"
  tar -C "$root" -xf "$base"
fi

# The same suites as a machine of this release (security updates included).
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
# /proc: the programs find their private library through /proc/self/exe.
mount -t proc proc "$root/proc" 2>/dev/null || mount --rbind /proc "$root/proc" 2>/dev/null ||
  unable "cannot mount /proc in the root (a container without mount rights?)"
# Sharing the download cache only saves time: without it apt downloads everything.
mount --bind "$cache" "$root/var/cache/apt/archives" 2>/dev/null ||
  echo "deb_install: cannot share apt's download cache; downloading every package" >&2
cp "$deb" "$root/tmp/"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

echo "deb_install: apt install ./$(basename "$deb")"
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; unable "apt-get update failed"; }
t0=$(date +%s)
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$deb")" >>"$work/apt.log" 2>&1 ||
  { tail -30 "$work/apt.log" >&2; echo "deb_install: FAIL: apt could not install the package" >&2; exit 1; }
install_s=$(($(date +%s) - t0))
newly=$(grep -c '^Setting up ' "$work/apt.log" || true)
echo "deb_install: installed in ${install_s} s with $newly packages (apt log: $work/apt.log)"

fail() { echo "deb_install: FAIL: $*" >&2; exit 1; }
expect() {  # expect "what" "needle" output
  grep -qF -- "$2" <<<"$3" || { printf '%s\n' "$3" | tail -20 >&2; fail "$1: no '$2' in the output"; }
}

# What the package put on the system.
for f in /usr/bin/smx /usr/bin/smx-studio \
         /usr/share/applications/org.sparsemixerstudio.Studio.desktop \
         /usr/share/metainfo/org.sparsemixerstudio.Studio.metainfo.xml \
         /usr/share/icons/hicolor/scalable/apps/org.sparsemixerstudio.Studio.svg \
         /usr/share/icons/hicolor/48x48/apps/org.sparsemixerstudio.Studio.png \
         /usr/share/icons/hicolor/256x256/apps/org.sparsemixerstudio.Studio.png \
         /usr/share/man/man1/smx.1.gz /usr/share/man/man1/smx-studio.1.gz \
         /usr/share/doc/sparse-mixer-studio/copyright; do
  [ -e "$root$f" ] || fail "$f is not installed"
done
# Each query's output is kept whole before it is searched: `query | grep -q` under
# pipefail fails at random when grep exits at its match and the query, still
# writing, dies of SIGPIPE (it failed CI so, in the Debian 13 leg).
installed() { local status; status=$(in_root dpkg-query -W -f='${Status}' "$1" 2>&1) && [[ $status == *"install ok installed"* ]]; }
installed wordnet-base || fail "the recommended corpus package wordnet-base was not installed"
installed libopenblas0-pthread || fail "OpenBLAS (libopenblas0-pthread) was not installed"
# LibTorch loads libblas.so.3: that alternative must be OpenBLAS, not the reference BLAS.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)  # the host's: the root is the same architecture
blas=$(in_root update-alternatives --query "libblas.so.3-$multiarch" 2>&1) ||
  fail "update-alternatives --query libblas.so.3-$multiarch failed: $blas"
grep -q '^Value: .*openblas' <<<"$blas" || fail "libblas.so.3 is not OpenBLAS: $(grep '^Value' <<<"$blas" || echo "$blas")"

# An ordinary user with nothing set but HOME: data must go to ~/.local/share.
in_root useradd --create-home student
as_user() { chroot --userspec=student:student "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/home/student LANG=C.UTF-8 "$@"; }

# The LibTorch this release ships (Debian 12: libtorch1.13, 1.13.1; Debian 13:
# libtorch2.6, 2.6.0), as apt installed it: the programs must report it.
torch_pkg=$(dpkg-deb -f "$deb" Depends | grep -oE '\blibtorch[0-9]+\.[0-9]+\b' | head -n1)
[ -n "$torch_pkg" ] || fail "the package does not depend on a libtorchX.Y: $(dpkg-deb -f "$deb" Depends)"
torch_installed=$(in_root dpkg-query -W -f='${Version}' "$torch_pkg" 2>/dev/null) || fail "$torch_pkg is not installed"
torch_version=$(grep -oE '^([0-9]+:)?[0-9]+\.[0-9]+' <<<"$torch_installed" | sed 's/^[0-9]*://')
[ "libtorch$torch_version" = "$torch_pkg" ] || fail "$torch_pkg is installed in version $torch_installed"
echo "deb_install: Debian $os_version ($suite) ships $torch_pkg $torch_installed"
out=$(as_user smx --version 2>&1) || fail "smx --version: $out"
expect "smx --version" "LibTorch $torch_version." "$out"
expect "smx --version" "CUDA not available" "$out"
echo "deb_install: $out"
out=$(as_user smx --help 2>&1) || fail "smx --help: $out"
for c in presets info bench tokenizer pretrain finetune eval runs; do expect "smx --help" "$c" "$out"; done
out=$(as_user smx info --preset sparse-mixer 2>&1) || fail "smx info: $out"
expect "smx info" "parameters" "$out"

# The installed studio, offscreen: it must find its SentencePiece shim, train a
# tokenizer on WordNet, train and record the run in the XDG data folder.
out=$(as_user smx-studio --version 2>&1) || fail "smx-studio --version: $out"
expect "smx-studio --version" "LibTorch $torch_version." "$out"
t0=$(date +%s)
out=$(as_user env QT_QPA_PLATFORM=offscreen timeout 600 smx-studio --demo-steps 4 --quit-when-idle 2>&1) ||
  fail "the installed studio's demo run: $out"
expect "smx-studio demo" "finished: 4 steps" "$out"
echo "deb_install: studio demo run: $(grep -m1 '^run ' <<<"$out") ($(($(date +%s) - t0)) s)"
data=/home/student/.local/share/sparse-mixer-studio
[ -f "$root$data/runs.sqlite" ] || fail "no run store in $data"
ls "$root$data"/tokenizers/*.model >/dev/null 2>&1 || fail "no tokenizer in $data/tokenizers"

# The CLI sees the studio's run and trains on the same data folder.
out=$(as_user smx runs list 2>&1) || fail "smx runs list: $out"
expect "smx runs list" "finished" "$out"
out=$(as_user smx pretrain --preset demo --steps 2 --batch 4 --quiet 2>&1) || fail "smx pretrain: $out"
out=$(as_user smx runs list 2>&1)
[ "$(grep -c finished <<<"$out")" -ge 2 ] || fail "smx runs list shows fewer than 2 finished runs: $out"

# A data folder chosen once (smx data-dir --set) is used by both programs.
out=$(as_user smx data-dir --set /home/student/smx-data 2>&1) || fail "smx data-dir --set: $out"
out=$(as_user smx data-dir 2>&1)
expect "smx data-dir" "/home/student/smx-data" "$out"
out=$(as_user env QT_QPA_PLATFORM=offscreen timeout 600 smx-studio --demo-steps 2 --quit-when-idle 2>&1) ||
  fail "the studio with a chosen data folder: $out"
[ -f "$root/home/student/smx-data/runs.sqlite" ] || fail "the studio did not use the chosen data folder"

# Without the recommended corpus package, training says what to install.
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q wordnet-base >>"$work/apt.log" 2>&1 ||
  fail "apt-get remove wordnet-base failed"
if out=$(as_user smx pretrain --preset demo --steps 1 --quiet 2>&1); then fail "smx pretrain without WordNet succeeded"; fi
expect "smx pretrain without WordNet" "wordnet-base" "$out"
if out=$(as_user env QT_QPA_PLATFORM=offscreen timeout 600 smx-studio --demo-steps 2 --quit-when-idle 2>&1); then
  fail "the studio's demo without WordNet exited with success: $out"
fi
expect "the studio's demo without WordNet" "run failed before its first step" "$out"
expect "the studio's demo without WordNet" "wordnet-base" "$out"

# Removing the package removes its files and leaves the user's data alone.
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q sparse-mixer-studio >>"$work/apt.log" 2>&1 ||
  fail "apt-get remove failed"
[ ! -e "$root/usr/bin/smx-studio" ] || fail "smx-studio is still there after removal"
[ ! -e "$root/usr/lib/$multiarch/sparse-mixer-studio" ] || fail "the private library folder is still there after removal"
[ -f "$root$data/runs.sqlite" ] || fail "removing the package deleted the user's run store"
echo "deb_install: OK ($(du -k "$deb" | cut -f1) KiB package, ${install_s} s to install)"
