#!/usr/bin/env bash
# Makes the .deb from an already built tree (CPack): BUILD_DIR/package/*.deb.
#   tests/packaging/make_deb.sh BUILD_DIR
set -euo pipefail
build=$(realpath "${1:?usage: make_deb.sh BUILD_DIR}")
rm -f "$build"/package/*.deb
cd "$build"
cpack --config CPackConfig.cmake > package-cpack.log 2>&1 || { cat package-cpack.log >&2; exit 1; }
deb=$(ls "$build"/package/*.deb)
echo "make_deb: $deb: $(du -k "$deb" | cut -f1) KiB, installed $(dpkg-deb -f "$deb" Installed-Size) KiB" >&2
echo "$deb"
