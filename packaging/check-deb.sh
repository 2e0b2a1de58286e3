#!/usr/bin/env bash
# Builds the .deb from the binaries the tests built (the dev profile: no second, release build
# in CI), then checks it: it holds nacred, nacre, the unit and the configuration, and the unit
# passes `systemd-analyze verify`. `cargo deb -p nacre-daemon`
# alone builds the release package.
#
#   packaging/check-deb.sh        (after cargo build -p nacre-daemon -p nacre-cli)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
tools="${NACRE_CI_TOOLS:-/var/cache/nacre-ci/tools}"
cargo_deb_version=3.8.0

if ! "$tools/bin/cargo-deb" --version 2>/dev/null | grep -q "$cargo_deb_version"; then
  cargo install cargo-deb --version "$cargo_deb_version" --locked --root "$tools"
fi

deb=$("$tools/bin/cargo-deb" -p nacre-daemon --no-build --profile dev --output "$target/debian/" | tail -n 1)
echo "built $deb"
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/nacred ./usr/bin/nacre ./usr/lib/systemd/system/nacred.service ./etc/nacre/nacred.toml; do
  if ! grep -q " $path\$" <<< "$contents"; then
    echo "the package lacks $path:" >&2
    echo "$contents" >&2
    exit 1
  fi
done
dpkg-deb --field "$deb" Package Version Depends

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
# The unit as packaged, but starting the package's own nacred: verify checks that the executable
# exists, and nothing is installed on this machine.
mkdir "$root/verify"
sed "s|^ExecStart=/usr/bin/nacred |ExecStart=$root/usr/bin/nacred |" "$root/usr/lib/systemd/system/nacred.service" \
  > "$root/verify/nacred.service"
grep -q "^ExecStart=$root/usr/bin/nacred " "$root/verify/nacred.service"
# verify exits 0 on an unknown key or a bad value, saying so: any remark fails the check.
remarks=$(systemd-analyze verify --man=no "$root/verify/nacred.service" 2>&1) || { echo "$remarks" >&2; exit 1; }
if [[ -n "$remarks" ]]; then
  echo "systemd-analyze verify has remarks on the unit:" >&2
  echo "$remarks" >&2
  exit 1
fi
echo "the package and its unit check out"
