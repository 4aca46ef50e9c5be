#!/usr/bin/env bash
# The staging proved on a Debian machine: run.sh on the CPU with tiny settings
# and STAGED=all, in a private mount namespace (root: unshare + overlay
# whiteouts; nothing outside it changes) where Debian's SentencePiece (headers,
# libraries, pkg-config file), the SQLite and zlib headers and link libraries,
# and /usr/share/wordnet do not exist. The runtime libsqlite3.so.0 and libz.so.1
# stay: the compiler, CMake and Debian's LibTorch need them. Then it checks,
# outside the namespace where the system copies are visible again, that the
# build read only staged headers (ninja's dependency log), CMake's cache names
# only staged libraries, and the programs load the staged ones (ldd).
#
#   bash bench/gpu/dry-run.sh     (after bench/gpu/stage-deps.sh; BUILD_DIR: build-gpu-dry)
# Settings pass through to run.sh; the defaults here are tiny.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$root/build-gpu-dry}
deps=${GPU_DEPS:-$root/.gpu-deps}
bash "$root/bench/gpu/stage-deps.sh" --check
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
hide_include=(sentencepiece_processor.h sentencepiece_trainer.h sqlite3.h sqlite3ext.h zlib.h zconf.h)
hide_lib=(libsentencepiece.so libsentencepiece.so.0 libsentencepiece.so.0.0.0 libsentencepiece_train.so
          libsentencepiece_train.so.0 libsentencepiece_train.so.0.0.0 libsqlite3.so libsqlite3.a libz.so libz.a
          pkgconfig/sentencepiece.pc pkgconfig/sqlite3.pc pkgconfig/zlib.pc)

if [[ ${1:-} != --inside ]]; then
  [[ $(id -u) == 0 ]] || { echo "dry-run: needs root (a private mount namespace)" >&2; exit 1; }
  start=$SECONDS
  unshare --mount --propagation private bash "$0" --inside
  echo "dry-run: run.sh took $((SECONDS - start)) s in all"
  # Outside again, with the system copies visible: what did the build and the programs use?
  build=$BUILD_DIR
  fail() { echo "dry-run: FAIL: $*" >&2; exit 1; }
  echo "dry-run: CMake cache:"
  grep -E "^(SQLite3_INCLUDE_DIR|SQLite3_LIBRARY|ZLIB_INCLUDE_DIR|ZLIB_LIBRARY_RELEASE|SMX_SENTENCEPIECE_[A-Z_]+):" "$build/CMakeCache.txt" |
    tee "$build/dry-run-cache.txt"
  while IFS= read -r line; do
    [[ ${line#*=} == "$deps"/* ]] || fail "not staged: $line"
  done <"$build/dry-run-cache.txt"
  [[ $(wc -l <"$build/dry-run-cache.txt") -ge 7 ]] || fail "CMake cache lacks the staged paths"
  # Every header the build read (ninja's dependency log): none of Debian's copies.
  ninja -C "$build" -t deps >"$build/dry-run-deps.txt"
  if grep -E "/usr/include/(sentencepiece_|sqlite3|zlib\.h|zconf\.h)" "$build/dry-run-deps.txt"; then fail "the build read a system header"; fi
  for h in sentencepiece_processor.h sqlite3.h zlib.h; do  # ninja records them relative to the build folder
    n=$(grep -cE -- "(^|/| )$(basename "$deps")/[a-z0-9]+/include/$h\$" "$build/dry-run-deps.txt" || true)
    echo "dry-run: $n objects read the staged $h"
    ((n > 0)) || fail "no object read the staged $h"
  done
  echo "dry-run: with the system copies visible, the programs still load the staged ones:"
  env -u LD_LIBRARY_PATH ldd "$build/model/cli/smx" | grep -E "libsqlite3|libz\.so" | tee "$build/dry-run-ldd.txt"
  env -u LD_LIBRARY_PATH ldd "$build/model/text/libsmx_sentencepiece_shim.so" | grep sentencepiece | tee -a "$build/dry-run-ldd.txt"
  [[ $(grep -c "=> $deps/" "$build/dry-run-ldd.txt") == 4 ]] || fail "a library resolves outside $deps"
  echo "dry-run: ok"
  exit 0
fi

# Inside the namespace: hide the system copies.
tmp=$(mktemp -d)
mkdir -p "$tmp/inc/u" "$tmp/inc/w" "$tmp/lib/u/pkgconfig" "$tmp/lib/w"
for f in "${hide_include[@]}"; do mknod "$tmp/inc/u/$f" c 0 0; done
for f in "${hide_lib[@]}"; do mknod "$tmp/lib/u/$f" c 0 0; done
mount -t overlay overlay -o "lowerdir=/usr/include,upperdir=$tmp/inc/u,workdir=$tmp/inc/w" /usr/include
mount -t overlay overlay -o "lowerdir=/usr/lib/$arch,upperdir=$tmp/lib/u,workdir=$tmp/lib/w" "/usr/lib/$arch"
mount -t tmpfs none /usr/share/wordnet
for f in "${hide_include[@]}"; do [[ ! -e /usr/include/$f ]] || { echo "dry-run: /usr/include/$f still visible" >&2; exit 1; }; done
for f in "${hide_lib[@]}"; do [[ ! -e /usr/lib/$arch/$f ]] || { echo "dry-run: /usr/lib/$arch/$f still visible" >&2; exit 1; }; done
[[ ! -e /usr/share/wordnet/data.noun ]] || { echo "dry-run: WordNet still visible" >&2; exit 1; }
if pkg-config --exists sentencepiece 2>/dev/null; then echo "dry-run: pkg-config still finds sentencepiece" >&2; exit 1; fi
echo "dry-run: hidden: Debian's SentencePiece, SQLite/zlib headers and link libraries, /usr/share/wordnet"
unset SMX_WORDNET_DIR
export STAGED=all TORCH_PREFIX=${TORCH_PREFIX:-/usr} DEVICE=${DEVICE:-cpu}
export PRESETS=${PRESETS:-bert-l2-h256,sparse-mixer-l2-h256} BATCH=${BATCH:-2} SEQ=${SEQ:-64}
export ROUNDS=${ROUNDS:-2} REPEATS=${REPEATS:-2} WARMUP=${WARMUP:-1} PEER=${PEER:-0}
export PRETRAIN=${PRETRAIN-demo:40:8:64,sparse-mixer-l2-h256:20:4:64} RESUME_STEPS=${RESUME_STEPS:-5}
export BUDGET_S=${BUDGET_S:-100000}
nice -n 5 bash "$root/bench/gpu/run.sh"
