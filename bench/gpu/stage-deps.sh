#!/usr/bin/env bash
# Stages, from this machine's Debian 12 packages, what the GPU machine lacks
# (it has PyTorch's LibTorch, CMake, Ninja and a compiler, but no Debian
# packages) into .gpu-deps/ (ignored by git), for run.sh there:
#
#   include/        nlohmann JSON, CLI11 and fmt headers (header-only)
#   sentencepiece/  include/ + lib/libsentencepiece{,_train}.so.0  (libsentencepiece-dev 0.1.97)
#   sqlite3/        include/ + lib/libsqlite3.so.0                  (libsqlite3-dev 3.40)
#   zlib/           include/ + lib/libz.so.1                        (zlib1g-dev 1.2.13)
#   wordnet/        data.noun, data.verb, data.adj, data.adv        (wordnet-base: the default corpus)
#   licenses/       each package's copyright file
#   MANIFEST.txt    package versions, file sizes and sha256, and the newest
#                   glibc / libstdc++ symbol versions the libraries need
#
# The libraries are copied as their SONAME (no symlinks: only plain files travel
# well); CMake is given their full paths, so the programs find them through
# their RUNPATH. About 26 MiB in all (the device tool carries 64 MiB).
#
#   stage-deps.sh [--check]    --check: only verify an existing .gpu-deps
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
deps=${GPU_DEPS:-$root/.gpu-deps}   # GPU_DEPS: elsewhere (the gpu_staging test)
limit_mib=${STAGE_LIMIT_MIB:-60}

arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
libdir=/usr/lib/$arch

# name | packages (for versions and licenses) | headers | libraries (SONAMEs)
components=(
  "sentencepiece|libsentencepiece-dev libsentencepiece0|sentencepiece_processor.h sentencepiece_trainer.h|libsentencepiece.so.0 libsentencepiece_train.so.0"
  "sqlite3|libsqlite3-dev libsqlite3-0|sqlite3.h sqlite3ext.h|libsqlite3.so.0"
  "zlib|zlib1g-dev zlib1g|zlib.h zconf.h|libz.so.1"
)
wordnet_files=(data.noun data.verb data.adj data.adv)

check() {
  local bad=0
  for c in "${components[@]}"; do
    IFS='|' read -r name _ headers libs <<<"$c"
    for h in $headers; do [[ -f $deps/$name/include/$h ]] || { echo "stage-deps: missing $name/include/$h" >&2; bad=1; }; done
    for l in $libs; do [[ -f $deps/$name/lib/$l && ! -L $deps/$name/lib/$l ]] || { echo "stage-deps: missing $name/lib/$l" >&2; bad=1; }; done
  done
  for d in nlohmann CLI fmt; do [[ -d $deps/include/$d ]] || { echo "stage-deps: missing include/$d" >&2; bad=1; }; done
  for f in "${wordnet_files[@]}"; do [[ -s $deps/wordnet/$f ]] || { echo "stage-deps: missing wordnet/$f" >&2; bad=1; }; done
  if [[ -n $(find "$deps" -type l) ]]; then echo "stage-deps: symbolic links in $deps" >&2; bad=1; fi
  local kib
  kib=$(du -sk "$deps" | cut -f1)
  if ((kib > limit_mib * 1024)); then echo "stage-deps: $((kib / 1024)) MiB staged, over $limit_mib MiB" >&2; bad=1; fi
  ((bad == 0)) && echo "stage-deps: ${deps#$root/} complete, $((kib / 1024)) MiB"
  return $bad
}

if [[ ${1:-} == --check ]]; then
  check
  exit
fi

missing=()
for d in nlohmann CLI fmt; do [[ -d /usr/include/$d ]] || missing+=("/usr/include/$d"); done
for c in "${components[@]}"; do
  IFS='|' read -r name _ headers libs <<<"$c"
  for h in $headers; do [[ -f /usr/include/$h ]] || missing+=("/usr/include/$h"); done
  for l in $libs; do [[ -e $libdir/$l ]] || missing+=("$libdir/$l"); done
done
for f in "${wordnet_files[@]}"; do [[ -f /usr/share/wordnet/$f ]] || missing+=("/usr/share/wordnet/$f"); done
if ((${#missing[@]})); then
  echo "stage-deps: missing ${missing[*]}: run packaging/install-deps.sh first" >&2
  exit 1
fi

rm -rf "$deps"
mkdir -p "$deps/include" "$deps/wordnet" "$deps/licenses"
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/fmt "$deps/include/"
{
  echo "# .gpu-deps, staged $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME") ($arch)"
  echo "# by bench/gpu/stage-deps.sh; the Debian packages they come from:"
  dpkg-query -W -f '#   ${Package} ${Version}\n' nlohmann-json3-dev libcli11-dev libfmt-dev wordnet-base 2>/dev/null || true
} >"$deps/MANIFEST.txt"
for c in "${components[@]}"; do
  IFS='|' read -r name packages headers libs <<<"$c"
  mkdir -p "$deps/$name/include" "$deps/$name/lib"
  for h in $headers; do cp "/usr/include/$h" "$deps/$name/include/"; done
  for l in $libs; do cp -L "$libdir/$l" "$deps/$name/lib/$l"; done  # the real file, under its SONAME
  for p in $packages; do
    dpkg-query -W -f '#   ${Package} ${Version}\n' "$p" >>"$deps/MANIFEST.txt"
    [[ -f /usr/share/doc/$p/copyright ]] && cp "/usr/share/doc/$p/copyright" "$deps/licenses/$p.copyright"
  done
done
cp /usr/share/doc/wordnet-base/copyright "$deps/licenses/wordnet-base.copyright" 2>/dev/null || true
for f in "${wordnet_files[@]}"; do cp "/usr/share/wordnet/$f" "$deps/wordnet/"; done

# What the staged libraries ask of the GPU machine's C and C++ runtimes: they
# load there against its own glibc and libstdc++, which must be at least these.
{
  echo "# newest symbol versions the libraries need (the GPU machine's glibc/libstdc++ must provide them):"
  for lib in "$deps"/*/lib/*.so.*; do
    syms=$(objdump -T "$lib" | grep -oE '\b(GLIBC|GLIBCXX|CXXABI)_[0-9.]+' | sort -u)
    need=$(for k in GLIBC GLIBCXX CXXABI; do { grep -E "^${k}_" <<<"$syms" || true; } | sort -V | tail -1; done | tr '\n' ' ')
    echo "#   ${lib#$deps/}: $need"
  done
  echo "# files:"
  (cd "$deps" && find . -type f ! -name MANIFEST.txt | sort | xargs sha256sum | while read -r sum f; do
     printf '%s %10d %s\n' "$sum" "$(stat -c %s "$f")" "${f#./}"; done)
} >>"$deps/MANIFEST.txt"
check
