/** What the node's activities are built from: the host adapters and this node's settings (injected, so tests can swap parts). */
import type { SnapshotMethod } from '../../core/global-config.js';
import type { CopyFn } from '../../adapters/host/copy.js';
import type { Files } from '../../adapters/host/files.js';
import type { PauseWatch } from '../../adapters/host/guest-pause.js';
import type { Images } from '../../adapters/host/images.js';
import type { Restic } from '../../adapters/host/restic.js';
import type { Virsh } from '../../adapters/host/virsh.js';

export interface NodeDeps {
  /** This node's name ([Global] ENVIRONMENT). */
  environment: string;
  virsh: Virsh;
  images: Images;
  files: Files;
  copy: CopyFn;
  /** restic, for backup roots that are repositories (docs/repository.md). */
  restic: Restic;
  /** Watches the guest's pause during a snapshot (QEMU's STOP/RESUME events, where virsh runs). */
  guestPause: (domain: string) => Promise<PauseWatch>;
  /**
   * [Backup] EXPORT_COMMAND when it is not the default `cp -p`: exports one file of the retain
   * directory to its place in the backup root (the command with `src dst` appended, run without a
   * shell where the node's commands run). Undefined: the built-in move or copier.
   */
  exportFile?: (src: string, dst: string, signal?: AbortSignal) => Promise<void>;
  /** libvirt URI, for the QEMU event watcher. */
  libvirtUri: string;
  /** [Backup] VIRTUALIZATION_ROOT of this node. */
  virtualizationRoot: string;
  /** [Backup] SNAPSHOT_METHOD of this node, used when neither the request nor LDAP chooses. */
  defaultMethod: SnapshotMethod;
  /** [Backup] COPY_BANDWIDTH in MiB/s for big copies, 0 = unlimited. */
  copyRateMiB: number;
  /**
   * Target guest pause of a live snapshot ([Backup] LIVE_MAX_DOWNTIME_MS). QEMU's default (300 ms)
   * lets it stop the guest with much RAM still to write; a low limit makes it copy more while the
   * guest runs. Raised step by step if the RAM save does not converge (a guest dirtying RAM fast).
   */
  liveMaxDowntimeMs: number;
  /** How often long activities poll libvirt jobs (ms). */
  pollMs?: number;
}
