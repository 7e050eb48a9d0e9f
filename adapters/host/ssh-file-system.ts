/**
 * The hypervisor's filesystem over the SSH gateway (CLISSH): each primitive of file-system.ts as one
 * GNU coreutils / findutils command run through the transport's `run` (argument arrays, quoted for
 * the remote shell by ssh.ts). Two writes need a redirection; they run a fixed `sh -c` script that
 * takes the path as a positional parameter, so no path is ever part of a shell line.
 */
import { CommandError, type Run } from './run.js';
import type { DirectoryEntry, FileStat, FileSystem } from './file-system.js';

/** An error with node:fs's code, for the conditions Files tells apart. */
function errno(code: 'ENOENT' | 'EEXIST' | 'ENOTDIR', path: string, e: CommandError): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${e.stderr.trim() || e.message}, ${path}`) as NodeJS.ErrnoException;
  err.code = code;
  err.path = path;
  return err;
}

/** A failed command's stderr read as node:fs would report it; other errors (a TransportError) pass. */
function asErrno(path: string) {
  return (e: unknown): never => {
    if (e instanceof CommandError) {
      if (/No such file or directory/.test(e.stderr)) throw errno('ENOENT', path, e);
      if (/File exists/.test(e.stderr)) throw errno('EEXIST', path, e);
      if (/Not a directory/.test(e.stderr)) throw errno('ENOTDIR', path, e);
    }
    throw e;
  };
}

/** Writes stdin to "$1" (mode "$2" for a new file, when given), then fdatasync when "$3" = sync. */
const WRITE_SCRIPT = 'if [ -n "$2" ]; then umask 077; fi; cat > "$1" || exit; if [ -n "$2" ]; then chmod "$2" "$1" || exit; fi; if [ "$3" = sync ]; then sync -d "$1" || exit; fi';

export function sshFileSystem(run: Run): FileSystem {
  return {
    async stat(path): Promise<FileStat> {
      const out = (await run('stat', ['-L', '--printf', '%s %b %B %d %f', '--', path]).catch(asErrno(path))).stdout;
      const [size, blocks, blockSize, dev, rawMode] = out.trim().split(' ');
      return {
        size: Number(size),
        blocks: (Number(blocks) * Number(blockSize)) / 512,
        dev: Number(dev),
        isDirectory: (parseInt(rawMode ?? '0', 16) & 0o170000) === 0o040000,
      };
    },
    async readText(path) {
      return (await run('cat', ['--', path], { exact: true }).catch(asErrno(path))).stdout;
    },
    async readHead(path, bytes) {
      return (await run('head', ['-c', String(bytes), '--', path], { binary: true }).catch(asErrno(path))).bytes ?? Buffer.alloc(0);
    },
    async write(path, content, o = {}) {
      const mode = o.mode === undefined ? '' : o.mode.toString(8);
      await run('sh', ['-c', WRITE_SCRIPT, 'kvm-backup-write', path, mode, o.sync ? 'sync' : ''], { input: content }).catch(asErrno(path));
    },
    async rename(from, to) {
      await run('mv', ['-f', '-T', '--', from, to]).catch(asErrno(from));
    },
    async link(from, to) {
      await run('ln', ['-T', '--', from, to]).catch(asErrno(from));
    },
    async remove(path, o = {}) {
      await run('rm', [o.recursive ? '-rf' : '-f', '--', path]).catch(asErrno(path));
    },
    async removeEmptyDirectory(path) {
      await run('rmdir', ['--', path]).catch(asErrno(path));
    },
    async makeDirectory(path, o = {}) {
      await run('mkdir', [...(o.recursive ? ['-p'] : []), '--', path]).catch(asErrno(path));
    },
    async chmod(path, mode) {
      await run('chmod', ['--', mode.toString(8), path]).catch(asErrno(path));
    },
    async readDirectory(path): Promise<DirectoryEntry[]> {
      if (!path.startsWith('/')) throw new Error(`not an absolute path: ${path}`);
      const out = (await run('find', [path, '-mindepth', '1', '-maxdepth', '1', '-printf', '%y%P\\0'], { exact: true }).catch(asErrno(path))).stdout;
      return out
        .split('\0')
        .filter(Boolean)
        .map((e) => ({ name: e.slice(1), isDirectory: e[0] === 'd' }));
    },
    async freeBytes(path) {
      const out = (await run('stat', ['-f', '-L', '--printf', '%a %S', '--', path]).catch(asErrno(path))).stdout;
      const [available, blockSize] = out.trim().split(' ').map(Number);
      return available! * blockSize!;
    },
    async writableDirectory(path) {
      try {
        await run('test', ['-d', path, '-a', '-w', path, '-a', '-x', path]);
        return true;
      } catch (e) {
        if (e instanceof CommandError) return false;
        throw e;
      }
    },
    async sha256(path) {
      const out = (await run('sha256sum', ['-b', '--', path], { idleIo: true }).catch(asErrno(path))).stdout;
      const hash = /^\\?([0-9a-f]{64}) /.exec(out)?.[1];
      if (!hash) throw new Error(`sha256sum ${path}: unexpected output ${out.slice(0, 100)}`);
      return hash;
    },
  };
}
