#!/usr/bin/env bash
# CI's check that wire/src/generated/ is exactly what the pinned flatc makes of wire/schema/.
# Exits non-zero on any difference. See wire/regenerate.sh.
set -euo pipefail
exec "$(dirname "$0")/regenerate.sh" --check
