#!/usr/bin/env bash
# Configures and builds the project (Ninja, ccache). Extra args go to CMake.
#   packaging/build.sh                 # everything, into build/
#   packaging/build.sh -DSMX_BUILD_GUI=OFF -DSMX_BUILD_TESTS=OFF   # engine + CLI only
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD_DIR"
