/**
 * Local files of a backup, the only way the steps touch the filesystem: directories created level
 * by level with the configured owner, group and permission (the original's createDirectory), files
 * given their ownership, atomic small writes, the JSON ledgers, free space and allocation, renames
 * and removals, hashing. Errors that the steps report carry the product's exit codes.
 */
import { constants } from 'node:fs';
import { access, chmod, link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Ownership } from '../../core/backup-plan.js';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import { sha256OfFile } from './hashing.js';
import { run as defaultRun, type Run } from './run.js';

export class Files {
  constructor(private readonly run: Run = defaultRun) {}

  exists(path: string): Promise<boolean> {
    return exists(path);
  }

  readText(path: string): Promise<string> {
    return readFile(path, 'utf8');
  }

  /** The first `bytes` bytes of a file (to recognise a marker or a header). */
  async readHead(path: string, bytes: number): Promise<Buffer> {
    const fh = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(bytes);
      const { bytesRead } = await fh.read(buffer, 0, bytes, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  /** A private working file (mode 600), e.g. a domain XML handed to virsh. */
  async writePrivate(path: string, content: string): Promise<void> {
    await writeFile(path, content, { mode: 0o600 });
  }

  /** A JSON ledger (core/layout.ts LEDGERS), or `fallback` when there is none yet. */
  async readJson<T>(path: string, fallback: T): Promise<T> {
    if (!(await exists(path))) return fallback;
    return JSON.parse(await readFile(path, 'utf8')) as T;
  }

  /** Writes a JSON ledger atomically (temp file + rename): a crash leaves the old one or the new one. */
  async writeJson(path: string, data: unknown): Promise<void> {
    await writeFile(`${path}.tmp`, JSON.stringify(data));
    await rename(`${path}.tmp`, path);
  }

  /** Removes a file; a missing one is fine. */
  async remove(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(from, to);
  }

  /** A second name for a file (a hard link: no byte copied); an existing `to` is replaced. */
  async link(from: string, to: string): Promise<void> {
    await rm(to, { force: true });
    await link(from, to);
  }

  /** Apparent size in bytes, or undefined when the file is missing. */
  async size(path: string): Promise<number | undefined> {
    return (await stat(path).catch(() => undefined))?.size;
  }

  /** True when `path` and directory `dir` are on one filesystem (a rename between them is atomic). */
  async sameFilesystem(path: string, dir: string): Promise<boolean> {
    return (await stat(path)).dev === (await stat(dir)).dev;
  }

  sha256(path: string): Promise<string> {
    return sha256OfFile(path);
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
    await rm(fresh, { recursive: true, force: true });
    await mkdir(fresh, { recursive: true });
    await this.run('tar', ['--extract', '--file', tarFile, '--directory', fresh, '--same-owner', '--preserve-permissions']);
    await rm(old, { recursive: true, force: true });
    if (await exists(dir)) await rename(dir, old);
    await rename(fresh, dir);
    await rm(old, { recursive: true, force: true });
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
        const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
        for (const e of entries) {
          if (!e.isDirectory()) continue;
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
      throw failure(chownCode, `chown ${o.owner}:${o.group} ${path}: ${(e as Error).message}`);
    }
    try {
      await chmod(path, o.mode);
    } catch (e) {
      throw failure(chmodCode, `chmod ${o.mode.toString(8)} ${path}: ${(e as Error).message}`);
    }
  }

  /** Creates `dir` and missing parents; each level created here gets the configured ownership. */
  async makeDirectory(dir: string, o: Ownership): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; !(await exists(d)); d = dirname(d)) {
      missing.unshift(d);
      if (dirname(d) === d) break;
    }
    for (const d of missing) {
      try {
        await mkdir(d);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw failure(Code.CANNOT_CREATE_DIRECTORY, `mkdir ${d}: ${(e as Error).message}`);
      }
      await this.setOwnership(d, o, 'directory');
    }
  }

  /** Writes a small file atomically (temp file + rename), then sets its ownership. */
  async writeSmallFile(path: string, content: string, o: Ownership, code: number): Promise<void> {
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, content, { mode: 0o600 });
      const fh = await open(tmp, 'r');
      await fh.sync();
      await fh.close();
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw failure(code, `cannot write ${path}: ${(e as Error).message}`);
    }
    await this.setOwnership(path, o, 'file');
  }

  /** Bytes the file really occupies (sparse-aware), as the space check needs. */
  async allocatedBytes(path: string): Promise<number> {
    try {
      return (await stat(path)).blocks * 512;
    } catch (e) {
      throw failure(Code.NO_DISK_SPACE_INFORMATION, `cannot read the size of ${path}: ${(e as Error).message}`);
    }
  }

  /** Free bytes for an unprivileged writer on the filesystem holding `path` (or its nearest existing parent). */
  async freeBytes(path: string): Promise<{ bytes: number; device: number }> {
    let p = path;
    while (!(await exists(p)) && dirname(p) !== p) p = dirname(p);
    try {
      const fs = await statfs(p);
      return { bytes: fs.bavail * fs.bsize, device: (await stat(p)).dev };
    } catch (e) {
      throw failure(Code.NO_DISK_SPACE_INFORMATION, `cannot read the free space of ${p}: ${(e as Error).message}`);
    }
  }

  async writableDirectory(dir: string): Promise<boolean> {
    try {
      if (!(await stat(dir)).isDirectory()) return false;
      await access(dir, constants.W_OK | constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Removes `dir` with everything in it, then its parents up to (not including) `stopAt` while they
   * are empty. Missing is fine (a retry after success).
   */
  async removeDirectory(dir: string, stopAt: string, code: number = Code.CANNOT_REMOVE_FILE): Promise<void> {
    try {
      await rm(dir, { recursive: true, force: true });
      for (let d = dirname(dir); d.startsWith(`${stopAt}/`) && d !== stopAt; d = dirname(d)) {
        if ((await readdir(d).catch(() => ['?'])).length > 0) break;
        await rmdir(d).catch(() => undefined);
      }
    } catch (e) {
      throw failure(code, `cannot remove ${dir}: ${(e as Error).message}`);
    }
  }

  async list(dir: string): Promise<string[]> {
    try {
      return (await readdir(dir)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
