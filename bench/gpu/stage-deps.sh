#!/usr/bin/env bash
# Copies the header-only dependencies (nlohmann JSON, CLI11, fmt) from this
# machine's Debian packages into .gpu-deps/include, for a machine that has
# LibTorch but no Debian packages (the GPU machine). The folder is ignored by
# git; carry it there with the working tree. See bench/gpu/README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=$root/.gpu-deps/include
for d in nlohmann CLI fmt; do
  if [[ ! -d /usr/include/$d ]]; then
    echo "stage-deps: /usr/include/$d is missing: run packaging/install-deps.sh first" >&2
    exit 1
  fi
done
rm -rf "$dest"
mkdir -p "$dest"
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/fmt "$dest/"
echo "staged $(du -sh "$dest" | cut -f1) of headers in ${dest#$root/}"
