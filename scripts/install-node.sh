#!/usr/bin/env bash
# Installs the pinned Node.js LTS into .tools/node (bin/node) from the npm registry, idempotent:
# the package node-linux-<arch> holds the official binary in its tarball (no install script, nothing
# fetched from nodejs.org). npm verifies the tarball against the registry's integrity; this script
# also checks it against the pinned hash below, so a changed package is refused. Debian 12's
# nodejs is 18 (end of life); Node 20 is end of life since 2026-04-30.
#
# Used by scripts/setup.sh (development, CI) and on production hosts (deploy/README.md). Prints the
# path of the node binary on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=24.22.3
declare -A NODE_INTEGRITY=(
  [x64]='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=='
  [arm64]='sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw=='
)
NODE=.tools/node/bin/node

if [[ -x $NODE ]] && [[ $("$NODE" --version 2>/dev/null) == "v$NODE_VERSION" ]]; then
  echo "$PWD/$NODE"
  exit 0
fi

case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "install-node: no pinned Node.js build for $(uname -m)" >&2; exit 1 ;;
esac
package="node-linux-$arch"
echo "== installing Node.js $NODE_VERSION from the npm registry ($package)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# npm pack needs some npm; any will do (it only downloads and checks the tarball): Debian's on a bare host
if ! command -v npm >/dev/null; then
  echo "== installing Debian's npm to fetch Node.js" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
(cd "$tmp" && npm pack --silent --pack-destination "$tmp" "$package@$NODE_VERSION" >/dev/null)
tarball="$tmp/$package-$NODE_VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ $actual != "${NODE_INTEGRITY[$arch]}" ]]; then
  echo "install-node: $package@$NODE_VERSION has integrity $actual, expected ${NODE_INTEGRITY[$arch]}" >&2
  exit 1
fi
rm -rf .tools/node.new
mkdir -p .tools/node.new
tar -xzf "$tarball" -C .tools/node.new --strip-components=1
[[ $(.tools/node.new/bin/node --version) == "v$NODE_VERSION" ]] || { echo "install-node: unpacked node is not v$NODE_VERSION" >&2; exit 1; }
rm -rf .tools/node
mv .tools/node.new .tools/node
echo "$PWD/$NODE"
