/**
 * The files of a backup, the only way the steps touch a filesystem: directories created level
 * by level with the configured owner, group and permission (the original's createDirectory), files
 * given their ownership, atomic small writes, the JSON ledgers, free space and allocation, renames
 * and removals, hashing. Errors that the steps report carry the product's exit codes.
 *
 * The filesystem is the hypervisor's: this machine's (LocalCLI, node:fs) or the one behind the SSH
 * gateway (CLISSH); both give the primitives of file-system.ts, and commands (tar, chown) go through
 * the same transport's `run`. A broken gateway is never taken for a missing file: its
 * TransportError passes through every method.
 */
import { dirname, join } from 'node:path';
import type { Ownership } from '../../core/backup-plan.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { localFileSystem, type FileSystem } from './file-system.js';
import { run as defaultRun, type Run } from './run.js';
import { isTransportError } from './transport-error.js';

/** Rethrows a failure of the transport; anything else is the caller's to judge. */
function unlessTransport(e: unknown): void {
  if (isTransportError(e)) throw e;
}

export class Files {
  constructor(
    private readonly run: Run = defaultRun,
    private readonly fs: FileSystem = localFileSystem,
  ) {}

  async exists(path: string): Promise<boolean> {
    try {
      await this.fs.stat(path);
      return true;
    } catch (e) {
      unlessTransport(e);
      return false;
    }
  }

  readText(path: string): Promise<string> {
    return this.fs.readText(path);
  }

  /** The first `bytes` bytes of a file (to recognise a marker or a header). */
  readHead(path: string, bytes: number): Promise<Buffer> {
    return this.fs.readHead(path, bytes);
  }

  /** A private working file (mode 600), e.g. a domain XML handed to virsh. */
  async writePrivate(path: string, content: string): Promise<void> {
    await this.fs.write(path, content, { mode: 0o600 });
  }

  /** A JSON ledger (core/layout.ts LEDGERS), or `fallback` when there is none yet. */
  async readJson<T>(path: string, fallback: T): Promise<T> {
    if (!(await this.exists(path))) return fallback;
    return JSON.parse(await this.fs.readText(path)) as T;
  }

  /** Writes a JSON ledger atomically (temp file + rename): a crash leaves the old one or the new one. */
  async writeJson(path: string, data: unknown): Promise<void> {
    await this.fs.write(`${path}.tmp`, JSON.stringify(data));
    await this.fs.rename(`${path}.tmp`, path);
  }

  /** Removes a file; a missing one is fine. */
  async remove(path: string): Promise<void> {
    await this.fs.remove(path);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.fs.rename(from, to);
  }

  /** A second name for a file (a hard link: no byte copied); an existing `to` is replaced. */
  async link(from: string, to: string): Promise<void> {
    await this.fs.remove(to);
    await this.fs.link(from, to);
  }

  /** Apparent size in bytes, or undefined when the file is missing. */
  async size(path: string): Promise<number | undefined> {
    try {
      return (await this.fs.stat(path)).size;
    } catch (e) {
      unlessTransport(e);
      return undefined;
    }
  }

  /** True when `path` and directory `dir` are on one filesystem (a rename between them is atomic). */
  async sameFilesystem(path: string, dir: string): Promise<boolean> {
    return (await this.fs.stat(path)).dev === (await this.fs.stat(dir)).dev;
  }

  sha256(path: string): Promise<string> {
    return this.fs.sha256(path);
  }

  /**
   * A tar archive of everything below `dir` (owners, modes and names kept), leaving out entries
   * named in `exclude` (e.g. a lock file): how an emulated TPM's state directory is backed up.
   */
  async archive(dir: string, tarFile: string, exclude: string[] = []): Promise<void> {
    await this.run('tar', ['--create', '--file', tarFile, '--directory', dir, ...exclude.map((x) => `--exclude=${x}`), '--', '.']);
  }

  /**
   * Replaces the contents of `dir` with the archive's, owners and modes as archived: unpacked beside
   * it first, then swapped in by rename, so a failure leaves the old contents in place.
   */
  async replaceWithArchive(tarFile: string, dir: string): Promise<void> {
    const fresh = `${dir}.kvm-backup-new`;
    const old = `${dir}.kvm-backup-old`;
    await this.fs.remove(fresh, { recursive: true });
    await this.fs.makeDirectory(fresh, { recursive: true });
    await this.run('tar', ['--extract', '--file', tarFile, '--directory', fresh, '--same-owner', '--preserve-permissions']);
    await this.fs.remove(old, { recursive: true });
    if (await this.exists(dir)) await this.fs.rename(dir, old);
    await this.fs.rename(fresh, dir);
    await this.fs.remove(old, { recursive: true });
  }

  /**
   * The first directory below `root` (breadth first, at most `depth` levels) for which `match`
   * holds; used to find an iteration whose disks moved since it was written.
   */
  async findDirectory(root: string, match: (path: string, name: string) => Promise<boolean>, depth = 6): Promise<string | undefined> {
    let level = [root];
    for (let left = depth; left >= 0 && level.length; left--) {
      const next: string[] = [];
      for (const dir of level) {
        const entries = await this.fs.readDirectory(dir).catch((e) => {
          unlessTransport(e);
          return [];
        });
        for (const e of entries) {
          if (!e.isDirectory) continue;
          const path = join(dir, e.name);
          if (await match(path, e.name)) return path;
          next.push(path);
        }
      }
      level = next;
    }
    return undefined;
  }

  /** chown + chmod; codes 19/20 for files, 30/31 for directories. */
  async setOwnership(path: string, o: Ownership, kind: 'file' | 'directory'): Promise<void> {
    const [chownCode, chmodCode] =
      kind === 'file'
        ? [Code.CANNOT_SET_DISK_IMAGE_OWNERSHIP, Code.CANNOT_SET_DISK_IMAGE_PERMISSION]
        : [Code.CANNOT_SET_DIRECTORY_OWNERSHIP, Code.CANNOT_SET_DIRECTORY_PERMISSION];
    try {
      await this.run('chown', ['--', `${o.owner}:${o.group}`, path]);
    } catch (e) {
      unlessTransport(e);
      throw failure(chownCode, `chown ${o.owner}:${o.group} ${path}: ${(e as Error).message}`);
    }
    try {
      await this.fs.chmod(path, o.mode);
    } catch (e) {
      unlessTransport(e);
      throw failure(chmodCode, `chmod ${o.mode.toString(8)} ${path}: ${(e as Error).message}`);
    }
  }

  /** Creates `dir` and missing parents; each level created here gets the configured ownership. */
  async makeDirectory(dir: string, o: Ownership): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; !(await this.exists(d)); d = dirname(d)) {
      missing.unshift(d);
      if (dirname(d) === d) break;
    }
    for (const d of missing) {
      try {
        await this.fs.makeDirectory(d);
      } catch (e) {
        unlessTransport(e);
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw failure(Code.CANNOT_CREATE_DIRECTORY, `mkdir ${d}: ${(e as Error).message}`);
      }
      await this.setOwnership(d, o, 'directory');
    }
  }

  /** Writes a small file atomically (temp file + rename), then sets its ownership. */
  async writeSmallFile(path: string, content: string, o: Ownership, code: number): Promise<void> {
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      await this.fs.write(tmp, content, { mode: 0o600, sync: true });
      await this.fs.rename(tmp, path);
    } catch (e) {
      await this.fs.remove(tmp).catch(() => undefined);
      unlessTransport(e);
      throw failure(code, `cannot write ${path}: ${(e as Error).message}`);
    }
    await this.setOwnership(path, o, 'file');
  }

  /** Bytes the file really occupies (sparse-aware), as the space check needs. */
  async allocatedBytes(path: string): Promise<number> {
    try {
      return (await this.fs.stat(path)).blocks * 512;
    } catch (e) {
      unlessTransport(e);
      throw failure(Code.NO_DISK_SPACE_INFORMATION, `cannot read the size of ${path}: ${(e as Error).message}`);
    }
  }

  /** Free bytes for an unprivileged writer on the filesystem holding `path` (or its nearest existing parent). */
  async freeBytes(path: string): Promise<{ bytes: number; device: number }> {
    let p = path;
    while (!(await this.exists(p)) && dirname(p) !== p) p = dirname(p);
    try {
      return { bytes: await this.fs.freeBytes(p), device: (await this.fs.stat(p)).dev };
    } catch (e) {
      unlessTransport(e);
      throw failure(Code.NO_DISK_SPACE_INFORMATION, `cannot read the free space of ${p}: ${(e as Error).message}`);
    }
  }

  writableDirectory(dir: string): Promise<boolean> {
    return this.fs.writableDirectory(dir);
  }

  /**
   * Removes `dir` with everything in it, then its parents up to (not including) `stopAt` while they
   * are empty. Missing is fine (a retry after success).
   */
  async removeDirectory(dir: string, stopAt: string, code: number = Code.CANNOT_REMOVE_FILE): Promise<void> {
    try {
      await this.fs.remove(dir, { recursive: true });
      for (let d = dirname(dir); d.startsWith(`${stopAt}/`) && d !== stopAt; d = dirname(d)) {
        const left = await this.fs.readDirectory(d).catch((e) => {
          unlessTransport(e);
          return [{ name: '?', isDirectory: false }];
        });
        if (left.length > 0) break;
        await this.fs.removeEmptyDirectory(d).catch((e) => unlessTransport(e));
      }
    } catch (e) {
      unlessTransport(e);
      throw failure(code, `cannot remove ${dir}: ${(e as Error).message}`);
    }
  }

  async list(dir: string): Promise<string[]> {
    try {
      return (await this.fs.readDirectory(dir)).map((e) => e.name).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }
}
