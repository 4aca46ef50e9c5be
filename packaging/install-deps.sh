#!/usr/bin/env bash
# Installs every build and runtime dependency of Sparse Mixer Studio on a fresh
# Debian 12 (bookworm) or Debian 13 (trixie) machine. Idempotent; run as root
# (or with sudo available).
#
#   packaging/install-deps.sh           # engine, CLI, GUI and test tools
#   packaging/install-deps.sh --engine  # engine + CLI only (no Qt)
#
# The release comes from /etc/os-release. Another release is refused with the
# list of supported ones; SMX_ALLOW_UNSUPPORTED_RELEASE=1 tries the Debian 13
# names there anyway (with a warning).
set -euo pipefail

engine_only=0
[ "${1:-}" = "--engine" ] && engine_only=1

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Which Debian: the package names and the LibTorch they give.
codename=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" )
version_id=$( . /etc/os-release 2>/dev/null && echo "${VERSION_ID:-}" )
case "$codename/$version_id" in
  bookworm/*|*/12) release=bookworm libtorch="LibTorch 1.13" ;;
  trixie/*|*/13)   release=trixie   libtorch="LibTorch 2.6" ;;
  *)
    msg="this is ${codename:-an unknown release}${version_id:+ ($version_id)}; supported: Debian 12 (bookworm) and Debian 13 (trixie)"
    if [ "${SMX_ALLOW_UNSUPPORTED_RELEASE:-}" != 1 ]; then
      echo "install-deps: $msg. SMX_ALLOW_UNSUPPORTED_RELEASE=1 tries Debian 13's package names." >&2
      exit 1
    fi
    echo "install-deps: warning: $msg; trying Debian 13's package names" >&2
    release=trixie libtorch="LibTorch (version of this release)"
    ;;
esac

# The names below exist in both releases (checked with apt-cache in each); the
# libraries they pull differ (Debian 13: LibTorch 2.6, Qt 6.8, t64 names).
pkgs=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev            # LibTorch, CPU (1.13 on Debian 12, 2.6 on Debian 13)
  libgloo-dev             # headers c10d's Gloo process group includes (distributed training)
  libopenblas0-pthread    # without it LibTorch uses the reference BLAS (~20x slower)
  libsentencepiece-dev    # tokenizer (loaded in its own link namespace: model/text/sentencepiece_shim.cpp)
  nlohmann-json3-dev      # configs in and out
  libcli11-dev            # CLI parsing
  libfmt-dev              # text formatting
  libsqlite3-dev          # run store
  zlib1g-dev              # snapshot checksums (CRC-32)
  wordnet-base            # default offline corpus
)
if [ "$engine_only" = 0 ]; then
  pkgs+=(
    qt6-base-dev qt6-svg-dev libqcustomplot-dev
    xvfb xauth             # offscreen/visual GUI tests
    # the Debian package (packaging/make-deb.sh) and its tests (tests/packaging/)
    librsvg2-bin           # PNG icons rendered from the SVG
    dpkg-dev file          # CPack's dependency discovery (dpkg-shlibdeps)
    desktop-file-utils appstream lintian groff-base   # metadata checks
    debootstrap            # a fresh Debian root to install the .deb into (and the Debian 13 test leg)
    python3                # the GPU benchmark's report (bench/gpu/report.py) and its test
    python3-torch          # the CPU comparison's plain-PyTorch peer (bench/cpu/) and its test
  )
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all ${#pkgs[@]} packages present (Debian $release, $libtorch)"
