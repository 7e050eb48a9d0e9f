/**
 * The checks a backup iteration must pass before it is trusted: its files against the sha256
 * manifest (38; an iteration of the original daemon has none, said as a warning), each qcow2 image
 * with `qemu-img check` judged by its exit code (38), the state file readable by libvirt or the
 * original's marker (44). Used by the restore (on the unretained copies) and by `verify` (in place).
 */
import type { Files } from '../../../adapters/host/files.js';
import type { Images } from '../../../adapters/host/images.js';
import type { Virsh } from '../../../adapters/host/virsh.js';
import { domainDisks, DomainXmlError, type DomainDisk } from '../../../core/domain-xml.js';
import { Code } from '../../../core/exit-codes.js';
import { failure } from '../../../core/failures.js';
import { fileNames, NOT_RUNNING_STATE_MARKER, parseManifest, type BackupFacts } from '../../../core/layout.js';
import type { RestoreImage, RestorePlan } from '../../../core/restore-plan.js';

export type Verified = 'sha256' | 'none';

/** The disks of a backed-up domain XML; XML that is not a well-formed domain fails with 45 CANNOT_READ_XML_FILE. */
export function backedUpDisks(xml: string, name: string): DomainDisk[] {
  try {
    return domainDisks(xml);
  } catch (e) {
    if (e instanceof DomainXmlError) throw failure(Code.CANNOT_READ_XML_FILE, `${name}: ${e.message}`);
    throw e;
  }
}

/**
 * `hashes` (file name → sha256 of the copy being checked) against the manifest of `manifestDir`.
 * `required` must all be listed; the LDIF may be missing.
 */
export async function checkChecksums(
  files: Files,
  plan: RestorePlan,
  manifestDir: string,
  hashes: Record<string, string>,
  required: string[],
  warnings: string[],
): Promise<Verified> {
  const manifestPath = `${manifestDir}/${plan.files.manifest}`;
  if (!(await files.exists(manifestPath))) {
    warnings.push(`${manifestDir} has no manifest (a backup of the original daemon?): checksums not verified, only completeness, qemu-img check and the state file`);
    return 'none';
  }
  const listed = parseManifest(await files.readText(manifestPath));
  for (const [name, expected] of listed) {
    const actual = hashes[name];
    if (actual === undefined) {
      if (name === plan.files.ldif) continue;
      throw failure(Code.MISSING_NECESSARY_FILES, `${name} is in the manifest but missing`);
    }
    if (actual !== expected) throw failure(Code.CORRUPT_DISK_IMAGE_FOUND, `${name} does not match its sha256 in the manifest (backup damaged)`);
  }
  for (const name of required) if (!listed.has(name)) throw failure(Code.CORRUPT_DISK_IMAGE_FOUND, `${name} is not in the manifest`);
  return 'sha256';
}

/**
 * The format of each image of a backup, by target: what the backup's facts recorded, else the
 * backed-up XML's driver type, else the configured format.
 */
export function imageFormats(disks: DomainDisk[], facts: BackupFacts | undefined, defaultFormat: string): (target: string) => string {
  return (target) => facts?.disks.find((d) => d.target === target)?.format ?? disks.find((d) => d.target === target)?.format ?? defaultFormat;
}

/**
 * `qemu-img check` of every image in `dir` whose format has metadata to check (qcow2); exit 3,
 * leaked clusters only, is a warning. A raw image has nothing to check but its manifest checksum.
 */
export async function checkImages(images: Images, dir: string, set: RestoreImage[], formatOf: (target: string) => string, warnings: string[]): Promise<void> {
  for (const image of set) {
    const format = formatOf(image.target);
    if (format !== 'qcow2') {
      if (format !== 'raw') warnings.push(`${image.file} is ${format}: qemu-img check skipped (only qcow2 is checked)`);
      continue;
    }
    const check = await images.check(`${dir}/${image.file}`, 'qcow2');
    if (check.exitCode === 3) warnings.push(`${image.file}: ${check.summary} (harmless)`);
    else if (check.exitCode !== 0) throw failure(Code.CORRUPT_DISK_IMAGE_FOUND, `${image.file} (${image.target}): qemu-img check: ${check.summary}`);
  }
}

/** An iteration's facts file (`<vm>.backup.json`), or undefined where there is none (older backups); 45 when unreadable. */
export async function readFacts(files: Files, path: string, name: string): Promise<BackupFacts | undefined> {
  if (!(await files.exists(path))) return undefined;
  try {
    const facts = JSON.parse(await files.readText(path)) as BackupFacts;
    if (facts.version !== 1 || !Array.isArray(facts.disks)) throw new Error(`unknown version ${String(facts.version)}`);
    return facts;
  } catch (e) {
    throw failure(Code.CANNOT_READ_XML_FILE, `${name} cannot be read: ${(e as Error).message}`, {}, { cause: e });
  }
}

/** The iteration's firmware files (UEFI variables, TPM state) as they lie in the backup root. */
export function firmwareFiles(facts: BackupFacts | undefined, ou: string): string[] {
  return [facts?.firmware.nvram?.file, facts?.firmware.tpm?.file].filter((f): f is string => !!f).map((f) => fileNames.inBackup(f, ou));
}

/** The original's marker, or a save image libvirt can read (44 otherwise). */
export async function checkStateFile(files: Files, virsh: Virsh, path: string, name: string): Promise<'saved' | 'marker'> {
  const head = (await files.readHead(path, 64)).toString('utf8');
  if (head.startsWith(NOT_RUNNING_STATE_MARKER)) return 'marker';
  try {
    await virsh.saveImageXml(path);
  } catch (e) {
    throw failure(Code.CANNOT_READ_STATE_FILE, `libvirt cannot read the state file ${name}: ${(e as Error).message}`, {}, { cause: e });
  }
  return 'saved';
}
