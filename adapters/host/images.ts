/** QEMU disk images through `qemu-img`: overlays, offline commit, flattening copies, checks and backing chains. */
import { CommandError, run as defaultRun, type Run, type RunOptions } from './run.js';

export interface ImageInfo {
  format: string;
  virtualSize: number;
  backingFile?: string;
}

/** One image of a backing chain, the image itself first (`qemu-img info --backing-chain`). */
export interface ChainImage {
  path: string;
  format: string;
  /** Bytes the guest sees. */
  virtualSize: number;
}

interface QemuImgInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'full-backing-filename'?: string;
  'backing-filename'?: string;
}

export interface ImageCheck {
  /** 0 clean, 1 check not completed, 2 corruptions, 3 leaked clusters only (qemu-img check's exit codes). */
  exitCode: number;
  corruptions: number;
  leaks: number;
  summary: string;
}

export class Images {
  constructor(private readonly run: Run = defaultRun) {}

  async info(image: string): Promise<ImageInfo> {
    const out = (await this.run('qemu-img', ['info', '-U', '--output=json', image])).stdout;
    const j = JSON.parse(out) as { format: string; 'virtual-size': number; 'full-backing-filename'?: string; 'backing-filename'?: string };
    const backing = j['full-backing-filename'] ?? j['backing-filename'];
    return { format: j.format, virtualSize: j['virtual-size'], ...(backing ? { backingFile: backing } : {}) };
  }

  /**
   * The image and every backing file below it, the image first, read without taking a lock (the VM
   * may be running on it). Errors: CommandError when an image of the chain cannot be opened.
   */
  async chain(image: string, format?: string): Promise<ChainImage[]> {
    const args = ['info', '-U', '--backing-chain', '--output=json', ...(format ? ['-f', format] : []), image];
    const out = (await this.run('qemu-img', args)).stdout;
    const list = JSON.parse(out) as QemuImgInfo[];
    return list.map((j) => ({ path: j.filename, format: j.format, virtualSize: j['virtual-size'] }));
  }

  /**
   * A standalone copy of `image` with everything its backing chain holds (the guest's view), in
   * `format`, sparse: what a backup of a linked clone keeps, so it restores without its template.
   * Reads the chain only (the frozen image and its backing files are never opened for writing).
   * `onProgress` gets the percentage qemu-img reports.
   */
  async convert(image: string, sourceFormat: string, target: string, format: string, o: { signal?: AbortSignal; onProgress?: (percent: number) => void } = {}): Promise<void> {
    const options: RunOptions = { idleIo: true, ...(o.signal ? { signal: o.signal } : {}) };
    if (o.onProgress) options.onStdout = (text) => {
      for (const m of text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)) o.onProgress!(Number(m[1]));
    };
    await this.run('qemu-img', ['convert', '-p', '-U', '-f', sourceFormat, '-O', format, image, target], options);
  }

  /** A new qcow2 overlay on `backing` (`-F` is mandatory on current QEMU). */
  async createOverlay(backing: string, overlay: string, backingFormat: string): Promise<void> {
    await this.run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', backingFormat, overlay]);
  }

  /**
   * Offline commit of an overlay into `base`, named explicitly (for a VM that went down on its
   * overlay): only `base` is written, never a backing file below it (a linked clone's template).
   */
  async commit(overlay: string, base: string): Promise<void> {
    await this.run('qemu-img', ['commit', '-q', '-f', 'qcow2', '-b', base, overlay]);
  }

  /**
   * `qemu-img check`, judged by its exit code and JSON output (not by comparing its text, which
   * broke the original on modern QEMU).
   */
  async check(image: string, format: string): Promise<ImageCheck> {
    try {
      const out = (await this.run('qemu-img', ['check', '-U', '-f', format, '--output=json', image])).stdout;
      return parseCheck(0, out);
    } catch (e) {
      if (e instanceof CommandError && e.exitCode !== undefined && [1, 2, 3].includes(e.exitCode)) return parseCheck(e.exitCode, e.stdout, e.stderr);
      throw e;
    }
  }
}

function parseCheck(exitCode: number, stdout: string, stderr = ''): ImageCheck {
  let corruptions = 0;
  let leaks = 0;
  try {
    const j = JSON.parse(stdout) as { corruptions?: number; leaks?: number };
    corruptions = j.corruptions ?? 0;
    leaks = j.leaks ?? 0;
  } catch {
    // exit code 1 (check not completed) may come without JSON
  }
  const summary = exitCode === 0 ? 'no errors' : `${corruptions} corruptions, ${leaks} leaked clusters${stderr ? `: ${stderr.trim()}` : ''}`;
  return { exitCode, corruptions, leaks, summary };
}
