/**
 * The node worker: one per hypervisor, polling `kvm-backup.node.<ENVIRONMENT>` with the activities
 * that touch libvirt and local files. Few concurrent activities: they copy gigabytes.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createNodeActivities, type NodeDeps } from '../activities/node/index.js';
import { copyFile, type CopyFn } from '../adapters/host/copy.js';
import { localFileSystem, type FileSystem } from '../adapters/host/file-system.js';
import { Files } from '../adapters/host/files.js';
import { watchGuestPause } from '../adapters/host/guest-pause.js';
import { Images } from '../adapters/host/images.js';
import { Restic } from '../adapters/host/restic.js';
import { guarded, run, type Command, type Run } from '../adapters/host/run.js';
import { sshCopy } from '../adapters/host/ssh-copy.js';
import { sshFileSystem } from '../adapters/host/ssh-file-system.js';
import { sshCommand, sshRun, type SshGateway } from '../adapters/host/ssh.js';
import { Virsh } from '../adapters/host/virsh.js';
import { exportCommandArgv, type GatewaySettings, type TransportApi } from '../core/transport-settings.js';
import { nodeTaskQueue } from '../core/naming.js';
import type { ResticSettings } from '../core/restic.js';
import type { WorkerObservation } from './observability.js';

export interface NodeWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: NodeDeps;
  maxConcurrentActivities?: number;
  /** Activity interceptors for logs and metrics (observability.ts). */
  observation?: WorkerObservation;
}

/**
 * Activities one node worker runs at once for `maxConcurrentBackups` ([Backup]
 * MAX_CONCURRENT_BACKUPS, 0 = no limit): one per backup that holds a slot (each runs one step at a
 * time), plus two for a restore or a compensation beside them; never fewer than 4.
 */
export function nodeActivitySlots(maxConcurrentBackups: number): number {
  return Math.max(4, maxConcurrentBackups + 2);
}

export async function createNodeWorker(o: NodeWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: nodeTaskQueue(o.deps.environment),
    activities: createNodeActivities(o.deps),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities ?? nodeActivitySlots(0),
    // long copies resume from their heartbeats, so a short grace period loses nothing
    shutdownGraceTime: '5 seconds',
    // heartbeats carry the progress the CLI, `status` and the UI read (no history events): sent at
    // least this often, not only every 0.8 × the heartbeat timeout
    maxHeartbeatThrottleInterval: '5 seconds',
    identity: `node-worker@${o.deps.environment}/${process.pid}`,
    ...o.observation,
  });
}

/** Why a CLISSH node refuses a repository backup root (39, in the preflight). */
export const RESTIC_NEEDS_LOCAL_CLI =
  'a restic repository as backup root needs [Service] TRANSPORTAPI = LocalCLI: restic runs where the node worker runs, and with CLISSH the images are on the gateway host';

/**
 * The real dependencies of a node worker, from its configuration: the host adapters over its
 * transport. LocalCLI (the default): commands and files on this machine. CLISSH: every command, file
 * operation and copy on the hypervisor behind the SSH gateway (adapters/host/ssh.ts); libvirt's URI
 * is then resolved there (qemu:///system is that host's libvirtd).
 */
export function nodeDeps(o: {
  environment: string;
  libvirtUri?: string;
  virtualizationRoot: string;
  defaultMethod: NodeDeps['defaultMethod'];
  copyRateMiB: number;
  liveMaxDowntimeMs: number;
  /** [Backup] RESTIC_* (default: `restic` on PATH, no password file: a repository root then fails 2). */
  restic?: ResticSettings;
  /** [Service] TRANSPORTAPI and [Gateway]; absent: LocalCLI. */
  transport?: { api: TransportApi; gateway: GatewaySettings };
  /** [Backup] EXPORT_COMMAND; absent or `cp -p`: the built-in copier. */
  exportCommand?: string;
}): NodeDeps {
  const libvirtUri = o.libvirtUri ?? 'qemu:///system';
  const host = o.transport?.api === 'CLISSH' ? sshHost(o.transport.gateway) : localHost();
  const exportArgv = o.exportCommand ? exportCommandArgv(o.exportCommand) : undefined;
  return {
    environment: o.environment,
    virsh: new Virsh(libvirtUri, host.run),
    images: new Images(host.run),
    files: new Files(host.run, host.fs),
    copy: host.copy,
    guestPause: (domain) => watchGuestPause(libvirtUri, domain, host.command, host.pauseWarmupMs),
    ...(exportArgv
      ? {
          exportFile: async (src: string, dst: string, signal?: AbortSignal) => {
            await host.run(exportArgv[0]!, [...exportArgv.slice(1), src, dst], { idleIo: true, ...(signal ? { signal } : {}) });
          },
        }
      : {}),
    restic: new Restic(
      o.restic ?? { binary: 'restic', verifyReadData: '100%', limitKiB: 0 },
      o.transport?.api === 'CLISSH' ? { unavailable: RESTIC_NEEDS_LOCAL_CLI } : {},
    ),
    libvirtUri,
    virtualizationRoot: o.virtualizationRoot,
    defaultMethod: o.defaultMethod,
    copyRateMiB: o.copyRateMiB,
    liveMaxDowntimeMs: o.liveMaxDowntimeMs,
  };
}

interface Host {
  command: Command;
  run: Run;
  fs: FileSystem;
  copy: CopyFn;
  pauseWarmupMs: number;
}

function localHost(): Host {
  return { command: guarded, run, fs: localFileSystem, copy: copyFile, pauseWarmupMs: 150 };
}

function sshHost(g: GatewaySettings): Host {
  const gateway: SshGateway = {
    host: g.host,
    port: g.port,
    user: g.user,
    ...(g.dsaFile && g.dsaFile !== 'none' ? { identityFile: g.dsaFile } : {}),
    ...(g.knownHosts ? { knownHostsFile: g.knownHosts } : {}),
  };
  const remoteRun = sshRun(gateway);
  const fs = sshFileSystem(remoteRun);
  // the watcher's ssh needs its handshake before QEMU's events can reach it
  return { command: sshCommand(gateway), run: remoteRun, fs, copy: sshCopy(remoteRun, fs), pauseWarmupMs: 1_500 };
}
