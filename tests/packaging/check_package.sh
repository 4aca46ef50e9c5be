#!/usr/bin/env bash
# The package's metadata as Debian and desktops check it: the desktop entry
# (desktop-file-validate), AppStream metainfo (appstreamcli validate), the man
# pages (groff warnings, every command and option documented), the .deb's
# contents and dependencies, and lintian with no error or warning.
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

# The .deb: contents, dependencies, lintian.
deb=$(ls "$build"/package/sparse-mixer-studio_"$version"-1_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || fail "no sparse-mixer-studio_$version-1 .deb in $build/package"
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
for d in libopenblas0-pthread libtorch1.13 libqt6widgets6 libqcustomplot2.1-qt6 libsentencepiece0 libsqlite3-0; do
  grep -q "\b$d\b" <<<"$depends" || fail "Depends lacks $d: $depends"
done
[ "$(dpkg-deb -f "$deb" Recommends)" = wordnet-base ] || fail "Recommends is not wordnet-base"
# The installed tree as software centres read it: metainfo, desktop entry and icon together.
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
dpkg-deb -x "$deb" "$tree"
appstreamcli validate-tree --no-net "$tree" || fail "appstreamcli validate-tree refused the installed tree"
lintian --fail-on error,warning "$deb" || fail "lintian found errors or warnings"
echo "check_package: ok ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB)"
