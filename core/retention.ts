/**
 * Which finished iterations a VM keeps: the newest `sstBackupNumberOfIterations` (at least one, as
 * the original never deleted its last backup). Used by the rotation of a one-go backup (iteration
 * directories) and by the scheduler's retention (finished leaves), so both keep the same ones. Pure.
 */
import { isLeafOu } from './naming.js';

/** The ous (UTC timestamps) beyond the newest `keep`, oldest first; anything that is not a timestamp is left alone. */
export function iterationsBeyond(finishedOus: readonly string[], keep: number): string[] {
  const newestFirst = finishedOus.filter(isLeafOu).sort().reverse();
  return newestFirst.slice(Math.max(1, keep)).reverse();
}
