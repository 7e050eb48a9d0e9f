/**
 * Local files of a backup: directories created level by level with the configured owner, group and
 * permission (the original's createDirectory), files given their ownership, atomic small writes,
 * free space and allocation. Errors carry the product's exit codes.
 */
import { constants } from 'node:fs';
import { access, chmod, mkdir, open, readdir, rename, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Code } from '../../core/exit-codes.js';
import { failure } from '../../core/failures.js';
import type { Ownership } from '../../core/backup-plan.js';
import { run as defaultRun, type Run } from './run.js';

export class Files {
  constructor(private readonly run: Run = defaultRun) {}

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
