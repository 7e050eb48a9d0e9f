/**
 * `kvm-backup repository init <uri>`: creates the restic repository a backup root URI names
 * (`restic:///path`, `restic+sftp://user@host:port/path`) with this node's password file and SSH
 * settings ([Backup] RESTIC_*), compressed (repository format 2). A backup never creates one by
 * itself: a missing repository (an unmounted disk, a typo) fails 26 instead of filling a new one.
 * `kvm-backup repository check <uri>`: `restic check` of the whole repository's structure.
 */
import { Restic, ResticError } from '../../adapters/host/restic.js';
import { parseBackupRoot } from '../../core/backup-root.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf, messageOf } from '../../core/failures.js';
import { NamingError } from '../../core/naming.js';
import { RESTIC_PROBLEM_TEXT, resticProblemCode } from '../../core/restic.js';
import { CliError, type CliContext } from '../cli-context.js';

export async function repositoryCommand(ctx: CliContext, action: string, uri: string): Promise<number> {
  let root;
  try {
    root = parseBackupRoot(uri, 'repository URI');
  } catch (e) {
    throw new CliError(e instanceof NamingError ? e.code : Code.UNSUPPORTED_CONFIGURATION_PARAMETER, (e as Error).message);
  }
  if (root.kind !== 'repository') throw new CliError(Code.UNSUPPORTED_CONFIGURATION_PARAMETER, `${uri} is not a restic repository URI (restic:///path or restic+sftp://user@host:port/path)`);
  const restic = new Restic(ctx.config.backup.restic);
  try {
    if (action === 'init') {
      const id = await restic.init(root.repository);
      ctx.print(`created repository ${id.slice(0, 8)} at ${uri}`, { uri, id });
    } else {
      const { errors } = await restic.check(root.repository);
      ctx.print(`repository ${uri}: ${errors} errors`, { uri, errors });
      if (errors) return Code.CORRUPT_DISK_IMAGE_FOUND;
    }
    return 0;
  } catch (e) {
    if (e instanceof ResticError) throw new CliError(resticProblemCode(e.problem, Code.UNDEFINED_ERROR), `${RESTIC_PROBLEM_TEXT[e.problem]}: ${e.message}`);
    throw new CliError(codeOf(e), messageOf(e));
  }
}
