#!/usr/bin/env bash
# The package's metadata as Debian and desktops check it: the desktop entry
# (desktop-file-validate), AppStream metainfo (appstreamcli validate), the man
# pages (groff warnings, every command and option documented), the .deb's
# contents and dependencies, and lintian with no error or warning.
# The package is the one of the Debian release this runs on (Debian 12 or 13):
# its revision names the release (0.1.0-1+deb12) and its Depends must hold the
# packages that ship the very libraries the built programs load (LibTorch,
# Qt, QCustomPlot, SentencePiece, SQLite), found with dpkg -S.
#   tests/packaging/check_package.sh SOURCE_DIR BUILD_DIR VERSION
# Skips (77) where a checker is missing, except under CI=true or
# SMX_REQUIRE_PACKAGE_TESTS=1.
set -euo pipefail
src=$(realpath "${1:?usage: check_package.sh SOURCE_DIR BUILD_DIR VERSION}")
build=$(realpath "${2:?}")
version="${3:?}"
app_id=org.sparsemixerstudio.Studio
fail() { echo "check_package: FAIL: $*" >&2; exit 1; }
for tool in desktop-file-validate appstreamcli lintian groff dpkg-deb; do
  if ! command -v "$tool" >/dev/null; then
    msg="$tool is missing (packaging/install-deps.sh installs it)"
    if [ "${CI:-}" = true ] || [ "${SMX_REQUIRE_PACKAGE_TESTS:-}" = 1 ]; then fail "$msg"; fi
    echo "check_package: skipped: $msg" >&2
    exit 77
  fi
done

# Desktop entry and AppStream metadata, strictly.
out=$(desktop-file-validate "$src/packaging/desktop/$app_id.desktop" 2>&1) || fail "desktop-file-validate: $out"
[ -z "$out" ] || fail "desktop-file-validate has remarks: $out"
appstreamcli validate --no-net "$src/packaging/desktop/$app_id.metainfo.xml" ||
  fail "appstreamcli validate refused the metainfo"
newest=$(grep -o '<release version="[^"]*"' "$src/packaging/desktop/$app_id.metainfo.xml" | head -n1 | cut -d'"' -f2)
[ "$newest" = "$version" ] || fail "the metainfo's newest release is $newest, the project is $version"
changelog=$(head -n1 "$src/packaging/debian/changelog" | sed -E 's/^[^(]*\(([^)]*)\).*/\1/')
[ "$changelog" = "$version-1" ] || fail "packaging/debian/changelog starts at $changelog, the package is $version-1"

# Man pages: no groff warning; every smx command and every studio option documented.
for page in smx smx-studio; do
  out=$(groff -man -Tutf8 -ww -z "$build/packaging/man/$page.1" 2>&1) || fail "groff $page.1: $out"
  [ -z "$out" ] || fail "groff warns about $page.1: $out"
done
smx_help=$("$build/model/cli/smx" --help)
commands=$(sed -n '/^Subcommands:/,$p' <<<"$smx_help" | awk 'NR > 1 && NF {print $1}')
[ -n "$commands" ] || fail "no subcommands in smx --help"
for c in $commands; do
  grep -q "^\.SS $(sed 's/-/\\\\-/g' <<<"$c")\b" "$build/packaging/man/smx.1" || fail "smx.1 has no section for 'smx $c'"
done
studio_options=$("$build/app/smx-studio" --help | grep -oE -- '^  (-[a-z?], )?--[a-z][a-z-]*' | grep -o -- '--[a-z-]*' |
                 grep -vx -- --help-all)
[ "$(wc -l <<<"$studio_options")" -ge 8 ] || fail "too few options read from smx-studio --help: $studio_options"
for o in $studio_options; do
  grep -qF -- "$(sed 's/-/\\-/g' <<<"$o")" "$build/packaging/man/smx-studio.1" || fail "smx-studio.1 does not document $o"
done

# The .deb: its version, contents, dependencies, lintian.
# On Debian N the revision is 1+debN (packaging/package.cmake), elsewhere 1.
os_id=$( . /etc/os-release 2>/dev/null && echo "${ID:-}" )
os_version=$( . /etc/os-release 2>/dev/null && echo "${VERSION_ID:-}" )
revision=1
if [ "$os_id" = debian ] && [[ "$os_version" =~ ^[0-9]+$ ]]; then revision="1+deb$os_version"; fi
deb=$(ls "$build"/package/sparse-mixer-studio_"$version-$revision"_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || fail "no sparse-mixer-studio_$version-$revision .deb in $build/package: $(ls "$build"/package)"
[ "$(dpkg-deb -f "$deb" Version)" = "$version-$revision" ] || fail "the package's version is $(dpkg-deb -f "$deb" Version), not $version-$revision"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/smx ./usr/bin/smx-studio \
         "./usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/sparse-mixer-studio/libsmx_sentencepiece_shim.so" \
         "./usr/share/applications/$app_id.desktop" "./usr/share/metainfo/$app_id.metainfo.xml" \
         "./usr/share/icons/hicolor/scalable/apps/$app_id.svg" \
         ./usr/share/man/man1/smx.1.gz ./usr/share/man/man1/smx-studio.1.gz \
         ./usr/share/doc/sparse-mixer-studio/copyright ./usr/share/doc/sparse-mixer-studio/changelog.Debian.gz; do
  grep -qxF -- "$f" <<<"$contents" || fail "the package lacks $f"
done
for size in 16 24 32 48 64 128 256 512; do
  grep -qxF -- "./usr/share/icons/hicolor/${size}x${size}/apps/$app_id.png" <<<"$contents" || fail "no ${size}x${size} PNG icon"
done
depends=$(dpkg-deb -f "$deb" Depends)
# The Debian package that ships each library the built programs load, on this
# release (Debian 12: libtorch1.13, libqt6widgets6; Debian 13: libtorch2.6,
# libqt6widgets6t64, ...): the .deb must depend on exactly those.
owner_of() {  # owner_of BINARY LIBRARY-SONAME-PREFIX: the package that ships it
  local path pkg
  path=$(ldd "$1" | awk -v lib="$2" 'index($1, lib) == 1 {print $3; exit}')
  [ -n "$path" ] && [ -e "$path" ] || fail "$1 does not load $2 (ldd)"
  path=$(realpath "$path")
  # dpkg knows the file under /usr or, on a system not yet merged, under /lib.
  pkg=$( (dpkg-query -S "$path" || dpkg-query -S "${path#/usr}") 2>/dev/null | head -n1 | cut -d: -f1)
  [ -n "$pkg" ] || fail "no Debian package ships $path (dpkg -S)"
  echo "$pkg"
}
torch_pkg=$(owner_of "$build/model/cli/smx" libtorch_cpu.so)
# ... and it is the LibTorch the programs were built with: libtorch<major.minor>.
torch_version=$("$build/model/cli/smx" --version | grep -oE 'LibTorch [0-9]+\.[0-9]+' | cut -d' ' -f2)
[ -n "$torch_version" ] || fail "smx --version names no LibTorch version: $("$build/model/cli/smx" --version)"
[ "$torch_pkg" = "libtorch$torch_version" ] ||
  fail "smx was built with LibTorch $torch_version but loads it from $torch_pkg"
shim=$(find "$build/model" -name libsmx_sentencepiece_shim.so | head -n1)
[ -n "$shim" ] || fail "no SentencePiece shim in $build/model"
qt_pkg=$(owner_of "$build/app/smx-studio" libQt6Widgets.so)
qcp_pkg=$(owner_of "$build/app/smx-studio" libQCustomPlotQt6.so)
spm_pkg=$(owner_of "$shim" libsentencepiece.so)
sqlite_pkg=$(owner_of "$build/model/cli/smx" libsqlite3.so)
expected_deps=(libopenblas0-pthread "$torch_pkg" "$qt_pkg" "$qcp_pkg" "$spm_pkg" "$sqlite_pkg")
for d in "${expected_deps[@]}"; do
  grep -qE "(^|, |\| )$d( |,|$)" <<<"$depends" || fail "Depends lacks $d: $depends"
done
echo "check_package: Depends has ${expected_deps[*]}"
[ "$(dpkg-deb -f "$deb" Recommends)" = wordnet-base ] || fail "Recommends is not wordnet-base"
# The installed tree as software centres read it: metainfo, desktop entry and icon together.
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
dpkg-deb -x "$deb" "$tree"
appstreamcli validate-tree --no-net "$tree" || fail "appstreamcli validate-tree refused the installed tree"
lintian --fail-on error,warning "$deb" || fail "lintian found errors or warnings"
echo "check_package: ok ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB)"
