/**
 * What the steps share when the backup root is a restic repository (docs/repository.md): finding an
 * iteration's snapshot by its tags, and turning restic's failures into the product's exit codes
 * (core/restic.ts resticProblemCode), with the cause for the retry decision: a lock or a lost
 * connection passes, a wrong password or a missing repository does not.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { ResticError, type Restic } from '../../adapters/host/restic.js';
import type { ResticRepository } from '../../core/backup-root.js';
import { failure } from '../../core/failures.js';
import { RESTIC_PROBLEM_TEXT, resticProblemCode, tagValue, type ResticSnapshot } from '../../core/restic.js';

/**
 * The failure for an error of a restic step: a ResticError by its problem (`otherwise` when restic's
 * answer says nothing more specific), anything else as `otherwise`; failures and cancellations as
 * they are.
 */
export function repositoryFailure(e: unknown, otherwise: number, what: string): Error {
  if (e instanceof ApplicationFailure || e instanceof CancelledFailure || (e as { name?: string }).name === 'AbortError') return e as Error;
  if (e instanceof ResticError) {
    const code = resticProblemCode(e.problem, otherwise);
    const transient = e.problem === 'locked' || e.problem === 'connection';
    const permanent = e.problem === 'wrong-password' || e.problem === 'no-repository' || e.problem === 'access' || e.problem === 'no-space';
    return failure(code, `${what}: ${e.problem === 'other' ? '' : `${RESTIC_PROBLEM_TEXT[e.problem]}: `}${e.message}`, { restic: e.problem }, permanent ? { permanent: true } : transient ? {} : { cause: e });
  }
  return failure(otherwise, `${what}: ${(e as Error).message}`, {}, { cause: e });
}

/** The snapshots of one VM (all its iterations), or of one iteration when `ou` is given; oldest first. */
export async function iterationSnapshots(restic: Restic, repo: ResticRepository, vm: string, ou?: string, signal?: AbortSignal): Promise<ResticSnapshot[]> {
  const all = await restic.snapshots(repo, [`vm=${vm}`, ...(ou ? [`ou=${ou}`] : [])], signal);
  // the tag filter matches whole tags; checked again so a foreign snapshot tagged alike cannot slip in
  return all.filter((s) => tagValue(s.tags, 'vm') === vm && (!ou || tagValue(s.tags, 'ou') === ou));
}
