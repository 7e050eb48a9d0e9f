#!/usr/bin/env bash
# Checks the systemd units with `systemd-analyze verify` (and prints the offline security
# review): the units name /opt/kvm-backup, so they are checked as copies pointing at this
# checkout, whose scripts/kvm-backup must exist for verify. Needs systemd's systemd-analyze
# (Debian package systemd); no running systemd.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in "$here"/deploy/systemd/*.service; do
  sed "s#/opt/kvm-backup#$here#g" "$unit" > "$tmp/$(basename "$unit")"
done
systemd-analyze --version | head -n1
cd "$tmp"
# verify exits 0 on warnings (unknown keys, unparsable values are "ignoring"): any output fails
out=$(systemd-analyze verify ./*.service 2>&1) || true
if [[ -n $out ]]; then
  printf '%s\n' "$out" >&2
  echo "verify: FAILED" >&2
  exit 1
fi
echo "verify: ok (no warnings)"
if [[ ${1:-} == --security ]]; then
  for unit in ./*.service; do systemd-analyze security --offline=yes "$unit" | tail -n1 | sed "s#^#$(basename "$unit"): #"; done
fi
