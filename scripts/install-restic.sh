#!/usr/bin/env bash
# restic, pinned, built from its Go module through the Go module proxy (checked against the Go
# checksum database) into .tools/restic/bin/restic: a static binary (CGO off) that can be copied to
# any node. Why not Debian 12's restic 0.14.0: it has no distinct exit codes for a missing
# repository, a lock or a wrong password (0.17), no JSON exit errors or restore progress (0.17) and
# cannot check one snapshot's data (0.19); docs/repository.md. Needs Go >= 1.25.
set -euo pipefail
cd "$(dirname "$0")/.."
RESTIC_VERSION=0.19.1
BIN=.tools/restic/bin/restic
if [[ -x $BIN ]] && "$BIN" version 2>/dev/null | grep -q "^restic $RESTIC_VERSION "; then
  exit 0
fi
GO=$(command -v go || true)
[[ -z $GO && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
if [[ -z $GO ]]; then
  echo "install-restic: Go >= 1.25 is needed to build restic $RESTIC_VERSION (or copy a restic $RESTIC_VERSION binary to $BIN)" >&2
  exit 1
fi
echo "== building restic $RESTIC_VERSION from its Go module into $BIN"
mkdir -p "$(dirname "$BIN")"
CGO_ENABLED=0 GOBIN="$PWD/$(dirname "$BIN")" GOFLAGS=-mod=mod "$GO" install -trimpath -ldflags "-s -w" "github.com/restic/restic/cmd/restic@v$RESTIC_VERSION"
"$BIN" version
