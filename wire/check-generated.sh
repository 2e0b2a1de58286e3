#!/usr/bin/env bash
# CI's check that the committed flatbuffers code is exactly what the pinned flatc makes of the
# schemas (wire/src/generated/ from wire/schema/nacre.fbs, compat/v1-client/src/generated/ from
# the frozen wire/schema/v1/nacre.fbs), and that the current schema conforms to v1
# (flatc --conform). Exits non-zero on any difference. See wire/regenerate.sh.
set -euo pipefail
exec "$(dirname "$0")/regenerate.sh" --check
