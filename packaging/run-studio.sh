#!/usr/bin/env bash
# Sets up a fresh Debian 12 or 13 machine, builds, and opens the studio.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
packaging/build.sh
exec build/app/smx-studio "$@"
