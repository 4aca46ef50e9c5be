#!/usr/bin/env bash
# Builds the project and its Debian package (CPack) into build/package/.
#   packaging/make-deb.sh     # prints the .deb's path on the last line
# Install it with:  sudo apt install ./build/package/sparse-mixer-studio_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
packaging/build.sh >&2
tests/packaging/make_deb.sh "$BUILD_DIR"
