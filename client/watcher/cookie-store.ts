/**
 * COOKIE_FILE: where the watcher is in the directory's change history, in the original's format
 * (`rid=001,csn=<entryCSN>`). A missing or empty file means DEFAULT_COOKIE (the seed): from the
 * beginning, so requests written before the first start are not lost. Written atomically (temp
 * file, then rename), so a crash leaves the old position or the new one, never half a line.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { cookiePosition, cookieRid, formatCookie } from '../../core/csn.js';

export class CookieStore {
  private rid = '001';

  constructor(
    readonly file: string,
    private readonly defaultCookie: string,
  ) {}

  /** The stored position (a CSN), or the default cookie's. */
  async read(): Promise<string> {
    let text: string;
    try {
      text = (await readFile(this.file, 'utf8')).trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      text = '';
    }
    const cookie = text || this.defaultCookie;
    this.rid = cookieRid(cookie);
    return cookiePosition(cookie);
  }

  async write(csn: string): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const temp = `${this.file}.${process.pid}.tmp`;
    await writeFile(temp, `${formatCookie(csn, this.rid)}\n`, { mode: 0o640 });
    await rename(temp, this.file);
  }
}
