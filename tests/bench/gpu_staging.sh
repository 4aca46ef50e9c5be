#!/usr/bin/env bash
# bench/gpu/stage-deps.sh into a scratch folder, then what the GPU machine
# relies on: everything there, under the device tool's 64 MiB, plain files
# only, each library under its SONAME and asking no newer glibc/libstdc++ than
# README assumes (glibc 2.34, GLIBCXX_3.4.29); CMake, given only the staged
# SentencePiece, SQLite and zlib the way run.sh gives them, records those in
# its cache and builds the SentencePiece shim, which resolves to the staged
# libraries (RUNPATH) and trains a tokenizer on the staged WordNet.
#   gpu_staging.sh SOURCE_DIR
set -euo pipefail
src=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The staging is made on Debian 12 (oldest glibc and libstdc++ of the releases
# here, so the copies load on the most GPU machines); elsewhere: skipped (77).
if [[ $(. /etc/os-release && echo "${ID:-}-${VERSION_ID:-}") != debian-12 ]]; then
  echo "gpu_staging: skipped, not Debian 12"
  exit 77
fi
deps=$dir/deps
GPU_DEPS=$deps bash "$src/bench/gpu/stage-deps.sh" >"$dir/stage.log" 2>&1 || { cat "$dir/stage.log"; fail "stage-deps.sh"; }
GPU_DEPS=$deps STAGE_LIMIT_MIB=64 bash "$src/bench/gpu/stage-deps.sh" --check || fail "--check"
kib=$(du -sk "$deps" | cut -f1)
echo "staged: $((kib / 1024)) MiB"
[[ -z $(find "$deps" -type l) ]] || fail "symbolic links staged"
for lib in "$deps"/*/lib/*; do
  soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  [[ $soname == "$(basename "$lib")" ]] || fail "$lib: SONAME $soname"
  newest() { { objdump -T "$lib" | grep -oE "\b$1_[0-9.]+" || true; } | sed "s/^$1_//" | sort -uV | tail -1; }
  for need in "GLIBC 2.34" "GLIBCXX 3.4.29"; do
    set -- $need
    v=$(newest "$1")
    [[ -z $v || $(printf '%s\n%s\n' "$v" "$2" | sort -V | tail -1) == "$2" ]] || fail "$lib needs $1_$v (README assumes at most $2)"
  done
done
for f in data.noun data.verb data.adj data.adv; do cmp -s "$deps/wordnet/$f" "/usr/share/wordnet/$f" || fail "wordnet/$f"; done
grep -q "libsentencepiece0 " "$deps/MANIFEST.txt" || fail "MANIFEST.txt lacks the package versions"

# CMake with only the staged copies (run.sh's flags with STAGED=all).
build=$dir/build
sp=$deps/sentencepiece
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSMX_BUILD_GUI=OFF -DSMX_BUILD_TESTS=OFF \
  -DSMX_HEADER_DEPS_DIR="$deps/include" -DSMX_SENTENCEPIECE_INCLUDE_DIR="$sp/include" \
  -DSMX_SENTENCEPIECE_LIBRARY="$sp/lib/libsentencepiece.so.0" -DSMX_SENTENCEPIECE_TRAIN_LIBRARY="$sp/lib/libsentencepiece_train.so.0" \
  -DSQLite3_INCLUDE_DIR="$deps/sqlite3/include" -DSQLite3_LIBRARY="$deps/sqlite3/lib/libsqlite3.so.0" \
  -DZLIB_INCLUDE_DIR="$deps/zlib/include" -DZLIB_LIBRARY="$deps/zlib/lib/libz.so.1" \
  -DZLIB_LIBRARY_RELEASE="$deps/zlib/lib/libz.so.1" >"$dir/configure.log" 2>&1 || { tail -30 "$dir/configure.log"; fail "configure"; }
grep -q "SentencePiece: $sp/lib/libsentencepiece.so.0" "$dir/configure.log" || fail "CMake did not take the staged SentencePiece"
for v in SQLite3_INCLUDE_DIR SQLite3_LIBRARY ZLIB_INCLUDE_DIR ZLIB_LIBRARY_RELEASE SMX_SENTENCEPIECE_LIBRARY; do
  value=$(sed -n "s/^$v:[A-Z]*=//p" "$build/CMakeCache.txt")
  [[ $value == "$deps"/* ]] || fail "$v=$value, not staged"
done
cmake --build "$build" --target smx_sentencepiece_shim >"$dir/build.log" 2>&1 || { tail -30 "$dir/build.log"; fail "build"; }
shim=$build/model/text/libsmx_sentencepiece_shim.so
loads=$(env -u LD_LIBRARY_PATH ldd "$shim")
for l in libsentencepiece.so.0 libsentencepiece_train.so.0; do
  grep -qF "$l => $sp/lib/$l " <<<"$loads" || fail "the shim does not load the staged $l: $loads"
done
# The shim with the staged SentencePiece trains a small tokenizer on the staged WordNet.
head -c 2000000 "$deps/wordnet/data.noun" | tail -n +30 | cut -d'|' -f2 >"$dir/glosses.txt"
python3 - "$shim" "$dir/glosses.txt" "$dir/tok" 2>"$dir/train.log" <<'PY' || { tail -5 "$dir/train.log"; fail "training a tokenizer through the shim"; }
import ctypes, os, sys
shim = ctypes.CDLL(sys.argv[1])
assert shim.smx_sp_abi_version() == 2
err = ctypes.create_string_buffer(4096)
args = f"input={sys.argv[2]}\nmodel_prefix={sys.argv[3]}\nvocab_size=300\n".encode()
rc = shim.smx_sp_train(args, err, ctypes.c_size_t(len(err)))
assert rc == 0, err.value.decode()
assert os.path.getsize(sys.argv[3] + ".model") > 1000
PY
echo "gpu_staging: ok"
