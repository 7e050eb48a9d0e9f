/** QEMU disk images through `qemu-img`: overlays, offline commit, checks and backing chains. */
import { CommandError, run as defaultRun, type Run } from './run.js';

export interface ImageInfo {
  format: string;
  virtualSize: number;
  backingFile?: string;
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

  /** A new qcow2 overlay on `backing` (`-F` is mandatory on current QEMU). */
  async createOverlay(backing: string, overlay: string, backingFormat: string): Promise<void> {
    await this.run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', backingFormat, overlay]);
  }

  /** Offline commit of an overlay into its backing file (for a VM that went down on its overlay). */
  async commit(overlay: string): Promise<void> {
    await this.run('qemu-img', ['commit', '-q', '-f', 'qcow2', overlay]);
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
