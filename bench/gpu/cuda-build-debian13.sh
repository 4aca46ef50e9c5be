#!/usr/bin/env bash
# The CUDA configuration of every source (engine, smx, studio, tests), compiled
# and linked against Debian 13 contrib's libtorch-cuda-dev 2.6 (CUDA 12.4,
# NCCL) in a debootstrap root of Debian 13 (issue 19: a CUDA build path a user
# can follow, checked on a machine without a GPU).
#
# libtorch-cuda-dev needs cuDNN, whose Debian package (nvidia-cudnn) downloads
# it from NVIDIA's site when it is configured: offline it stays unconfigured.
# Everything else is unpacked (LibTorch's CUDA build, CUDA's libraries and
# headers), so the sources compile; the programs are linked with symbols left
# unresolved in shared libraries (cuDNN's, reached through libtorch_cuda.so):
# -Wl,--unresolved-symbols=ignore-in-shared-libs for programs and
# -Wl,--allow-shlib-undefined for libraries. They build but cannot start here.
#
# Heavy: about 2.3 GB of packages and a long compile (hours on 2 cores); not in
# CI. Needs root, debootstrap and Debian's mirror; about 10 GB of disk.
#
#   bash bench/gpu/cuda-build-debian13.sh [WORK]     WORK: /var/tmp/smx-cuda-trixie
#     JOBS=N      parallel compile jobs (default: the number of cores)
#     FRESH=1     a new root (otherwise an existing WORK/root is reused)
#     STOP_AFTER=configure   install and configure only (minutes instead of hours)
#     TARGETS="smx_engine smx"  build only these (default: all)
# Result: WORK/result.txt (what configured, how many objects compiled, whether
# each program linked, timings); logs beside it. Exit 0 when all of it built.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(realpath -m "${1:-/var/tmp/smx-cuda-trixie}")
root=$work/root
suite=trixie
mirror=${SMX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Downloads go to WORK/archives, kept between runs; APT_CACHE=/var/cache/apt/archives
# shares the host's (then no other apt may run on the host meanwhile: one lock).
cache=${APT_CACHE:-$work/archives}
jobs=${JOBS:-$(nproc)}
[[ $(id -u) == 0 ]] || { echo "cuda-build-debian13: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "cuda-build-debian13: needs debootstrap" >&2; exit 1; }
mkdir -p "$work" "$work/ccache" "$cache/partial"
log() { echo "== [$(date -u +%H:%M:%S)] $*" | tee -a "$work/result.txt" >&2; }
unmount() {
  for m in "$root/src" "$root/var/cache/ccache" "$root/var/cache/apt/archives" "$root/proc"; do
    if mountpoint -q "$m" 2>/dev/null; then umount -R "$m" 2>/dev/null || umount -l "$m"; fi
  done
  return 0
}
trap unmount EXIT
unmount
if [[ ${FRESH:-0} == 1 ]]; then rm -rf --one-file-system "$root"; fi
: >"$work/result.txt"
t_all=$(date +%s)

if [[ ! -f $root/etc/debian_version ]]; then
  log "debootstrap $suite (minbase)"
  debootstrap --variant=minbase --cache-dir="$cache" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
fi
# contrib: libtorch-cuda-dev and nvidia-cudnn; non-free: CUDA's libraries and toolkit.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main contrib non-free non-free-firmware
deb $mirror $suite-updates main contrib non-free non-free-firmware
deb http://deb.debian.org/debian-security $suite-security main contrib non-free non-free-firmware
EOF
mount -t proc proc "$root/proc"
mount --bind "$cache" "$root/var/cache/apt/archives"
mkdir -p "$root/src" "$root/var/cache/ccache"
mount --bind "$src" "$root/src"
mount -o remount,bind,ro "$root/src"
mount --bind "$work/ccache" "$root/var/cache/ccache"
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive CCACHE_DIR=/var/cache/ccache CCACHE_BASEDIR=/src "$@"
}

status=$(in_root dpkg-query -W -f '${Status}' libtorch-cuda-dev 2>/dev/null || true)
if [[ $status == *installed* || $status == *unpacked* ]]; then
  log "libtorch-cuda-dev already in the root (FRESH=1 for a new one): no apt"
else
log "apt: the build dependencies (without LibTorch)"
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; exit 1; }
in_root apt-get install -y -q --no-install-recommends build-essential cmake ninja-build ccache pkgconf file \
  qt6-base-dev qt6-svg-dev libqcustomplot-dev libsentencepiece-dev nlohmann-json3-dev libcli11-dev libfmt-dev \
  libsqlite3-dev zlib1g-dev >>"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; exit 1; }

log "apt: libtorch-cuda-dev (cuDNN's download from NVIDIA fails offline: expected)"
# What apt means to install, asked before anything can break its state; fetched first.
mapfile -t cuda_pkgs < <(in_root apt-get install -s --no-install-recommends libtorch-cuda-dev | awk '/^Inst /{print $2}')
echo "libtorch-cuda-dev brings ${#cuda_pkgs[@]} packages" | tee -a "$work/result.txt" >&2
in_root apt-get install -y -q --download-only --no-install-recommends libtorch-cuda-dev >>"$work/apt.log" 2>&1 ||
  { tail -20 "$work/apt.log" >&2; exit 1; }
if ! in_root apt-get install -y -q --no-install-recommends libtorch-cuda-dev >>"$work/apt.log" 2>&1; then
  echo "apt-get install libtorch-cuda-dev failed (see apt.log): unpacking the rest with dpkg" | tee -a "$work/result.txt" >&2
  # A failed maintainer script (cuDNN's download, or its licence question) stops
  # apt: unpack every package it meant to install, then configure what can be.
  for p in "${cuda_pkgs[@]}"; do
    st=$(in_root dpkg-query -W -f '${Status}' "$p" 2>/dev/null || true)
    [[ $st == *installed* || $st == *unpacked* || $st == *half-configured* ]] && continue
    deb=$(cd "$cache" && ls "${p%%:*}"_*.deb 2>/dev/null | sort -V | tail -1)
    [[ -n $deb ]] || { echo "no .deb of $p in $cache" >>"$work/result.txt"; continue; }
    in_root dpkg --unpack --force-depends "/var/cache/apt/archives/$deb" >>"$work/apt.log" 2>&1 ||
      echo "dpkg --unpack $deb failed" >>"$work/result.txt"
  done
  in_root dpkg --configure -a --force-depends >>"$work/apt.log" 2>&1 || true
fi
fi
# LibTorch's CMake config (Caffe2's cuda.cmake) looks for the CUDA toolkit (nvcc),
# which libtorch-cuda-dev does not pull in. apt may fail again on cuDNN's
# pending configuration: what counts is that the toolkit is there afterwards.
if ! in_root sh -c 'command -v nvcc' >/dev/null; then
  log "apt: nvidia-cuda-toolkit (nvcc, for LibTorch's CMake config)"
  in_root apt-get install -y -q --no-install-recommends nvidia-cuda-toolkit >>"$work/apt.log" 2>&1 ||
    echo "apt-get install nvidia-cuda-toolkit: exit $? (see apt.log)" >>"$work/result.txt"
  in_root sh -c 'command -v nvcc' >/dev/null || { echo "no nvcc after installing nvidia-cuda-toolkit" >&2; exit 1; }
fi
# Gloo's headers (distributed training): the CUDA LibTorch replaces libgloo-dev
# by its CUDA build; its -dev package, where there is one.
if [[ ! -f $root/usr/include/gloo/config.h ]]; then
  in_root apt-get install -y -q --no-install-recommends libgloo-cuda-dev >>"$work/apt.log" 2>&1 ||
    echo "apt-get install libgloo-cuda-dev: exit $? (see apt.log)" >>"$work/result.txt"
  [[ -f $root/usr/include/gloo/config.h ]] ||
    echo "no Gloo headers beside the CUDA LibTorch: the build leaves distributed training out" >>"$work/result.txt"
fi
in_root dpkg-query -W -f '${Package} ${Version} ${Status}\n' libtorch-cuda-dev 'libtorch-cuda*' nvidia-cudnn \
  libcudart12 libnccl2 nvidia-cuda-toolkit 2>/dev/null | sort -u | tee -a "$work/result.txt" >&2 || true
status=$(in_root dpkg-query -W -f '${Status}' libtorch-cuda-dev 2>/dev/null || true)
[[ $status == *unpacked* || $status == *installed* ]] || { echo "libtorch-cuda-dev is not unpacked: $status" >&2; exit 1; }
echo "root: $(du -shx "$root" 2>/dev/null | cut -f1)" | tee -a "$work/result.txt" >&2

log "configure (CUDA LibTorch, studio and tests)"
opts=(-DCMAKE_BUILD_TYPE=Release -DSMX_BUILD_GUI=ON -DSMX_BUILD_TESTS=ON
      "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--unresolved-symbols=ignore-in-shared-libs"
      "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--allow-shlib-undefined")
[[ -f $root/usr/include/gloo/config.h ]] || opts+=(-DSMX_WITH_DIST=OFF)
in_root rm -rf /build
if ! in_root cmake -S /src -B /build -G Ninja "${opts[@]}" >"$work/configure.log" 2>&1; then
  tail -40 "$work/configure.log" | tee -a "$work/result.txt" >&2
  log "configure FAILED"
  exit 1
fi
grep -E "LibTorch|SMX_WITH_CUDA|SMX_WITH_DIST" "$work/configure.log" | tee -a "$work/result.txt" >&2
grep -q "SMX_WITH_CUDA: ON" "$work/configure.log" || log "WARNING: CMake did not find LibTorch's CUDA libraries"

if [[ ${STOP_AFTER:-} == configure ]]; then
  echo "total: $(($(date +%s) - t_all)) s (stopped after configuring, as asked)" >>"$work/result.txt"
  log "configured; not built (STOP_AFTER=configure)"
  exit 0
fi
log "build: $jobs jobs, every target, going on past errors"
t=$(date +%s)
targets=()
for target in ${TARGETS:-}; do targets+=(--target "$target"); done
in_root cmake --build /build -j "$jobs" "${targets[@]}" -- -k 0 >"$work/build.log" 2>&1 && built=1 || built=0
total=$(in_root ninja -C /build -t targets all | grep -c '\.o: ' || true)
done_objs=$(find "$root/build" -name '*.o' | wc -l)
echo "compile + link: $(($(date +%s) - t)) s; objects: $done_objs of $total" | tee -a "$work/result.txt" >&2
grep -E "^FAILED: " "$work/build.log" | tee -a "$work/result.txt" >&2 || true
for p in model/cli/smx app/smx-studio tests/device/smx_device_checks; do
  if [[ -x $root/build/$p ]]; then
    echo "linked: $p ($(in_root sh -c "ldd /build/$p 2>/dev/null | grep -c 'not found'") libraries absent at run time)" | tee -a "$work/result.txt" >&2
  else
    echo "NOT linked: $p" | tee -a "$work/result.txt" >&2
  fi
done
# The CUDA code paths were compiled in: the engine refers to c10::cuda.
cuda_syms=$(in_root sh -c "nm -C /build/model/libsmx_engine.a 2>/dev/null | grep -c 'c10::cuda'" || true)
echo "c10::cuda references in libsmx_engine.a: $cuda_syms" | tee -a "$work/result.txt" >&2
echo "total: $(($(date +%s) - t_all)) s" >>"$work/result.txt"
if [[ $built == 1 && $done_objs == "$total" ]]; then log "ok: every source compiled and linked"; else log "FAILED"; exit 1; fi
