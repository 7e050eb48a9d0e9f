/**
 * The few primitive file operations Files (files.ts) is built from, with two implementations: this
 * machine's filesystem through node:fs (LocalCLI), and the hypervisor's over the SSH gateway
 * (ssh-file-system.ts, CLISSH). Errors of a missing file carry `code: 'ENOENT'`, of an existing
 * directory `code: 'EEXIST'`, as node:fs's do; a broken gateway throws its TransportError.
 */
import { constants } from 'node:fs';
import { access, chmod, link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { sha256OfFile } from './hashing.js';

export interface FileStat {
  /** Apparent size in bytes. */
  size: number;
  /** 512-byte blocks allocated. */
  blocks: number;
  /** Device number of the filesystem holding it. */
  dev: number;
  isDirectory: boolean;
}

export interface DirectoryEntry {
  name: string;
  isDirectory: boolean;
}

export interface FileSystem {
  /** Follows symbolic links, as stat(2). */
  stat(path: string): Promise<FileStat>;
  readText(path: string): Promise<string>;
  /** The first `bytes` bytes (fewer when the file is shorter). */
  readHead(path: string, bytes: number): Promise<Buffer>;
  /** Creates or replaces a file; `mode` for a new file; `sync`: on disk before returning. */
  write(path: string, content: string, o?: { mode?: number; sync?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** A second name (hard link) for a file; `to` must not exist. */
  link(from: string, to: string): Promise<void>;
  /** Removes a file (a directory with everything in it, `recursive`); a missing one is fine. */
  remove(path: string, o?: { recursive?: boolean }): Promise<void>;
  removeEmptyDirectory(path: string): Promise<void>;
  makeDirectory(path: string, o?: { recursive?: boolean }): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  readDirectory(path: string): Promise<DirectoryEntry[]>;
  /** Bytes an unprivileged writer may still use on the filesystem holding `path` (statfs bavail × bsize). */
  freeBytes(path: string): Promise<number>;
  /** A directory the worker may create files in (write and search permission). */
  writableDirectory(path: string): Promise<boolean>;
  sha256(path: string): Promise<string>;
}

/** LocalCLI: node:fs on this machine. */
export const localFileSystem: FileSystem = {
  async stat(path) {
    const s = await stat(path);
    return { size: s.size, blocks: s.blocks, dev: s.dev, isDirectory: s.isDirectory() };
  },
  readText: (path) => readFile(path, 'utf8'),
  async readHead(path, bytes) {
    const fh = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(bytes);
      const { bytesRead } = await fh.read(buffer, 0, bytes, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  },
  async write(path, content, o = {}) {
    await writeFile(path, content, o.mode === undefined ? undefined : { mode: o.mode });
    if (o.sync) {
      const fh = await open(path, 'r');
      await fh.sync();
      await fh.close();
    }
  },
  rename: (from, to) => rename(from, to),
  link: (from, to) => link(from, to),
  remove: (path, o = {}) => rm(path, { recursive: o.recursive ?? false, force: true }),
  removeEmptyDirectory: (path) => rmdir(path),
  async makeDirectory(path, o = {}) {
    await mkdir(path, { recursive: o.recursive ?? false });
  },
  chmod: (path, mode) => chmod(path, mode),
  async readDirectory(path) {
    return (await readdir(path, { withFileTypes: true })).map((e) => ({ name: e.name, isDirectory: e.isDirectory() }));
  },
  async freeBytes(path) {
    const fs = await statfs(path);
    return fs.bavail * fs.bsize;
  },
  async writableDirectory(path) {
    try {
      if (!(await stat(path)).isDirectory()) return false;
      await access(path, constants.W_OK | constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  sha256: (path) => sha256OfFile(path),
};
