/**
 * The VM shapes real sites run (what the product does with them today: docs/backup.md and
 * docs/restore.md, "Known limits"; the trap of each is in its description below), each built as a
 * complete test World: its images on disk, its device entries in the
 * directory matching its domain XML, its domain defined and in the intended state. `SHAPES` is the
 * table a VM-shape matrix test iterates: name, builder, what the product is expected to do.
 *
 * Every name carries the run's tag (test/helpers/names.ts): domains and images by the world's VM name,
 * NVRAM files as <vm>_VARS.fd, TPM state by a UUID that starts with the tag. `world.close()` removes
 * everything a builder made: domains (the sibling clone too), NVRAM and TPM state, loop devices.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { Code } from '../../core/exit-codes.js';
import { createTinyVm, hostWrite, openPath } from '../../stack/tiny-vm.js';
import { attachLoop, detachLoop, NVRAM_MARKER_OFFSET, sha256File, tpmStateDir, writeNvramMarker, type ImageFormat } from './host-probes.js';
import { runTag, uniqueName } from './names.js';
import { createWorld, type World, type WorldContext, type WorldDisk, type WorldDomain, type WorldOptions } from './world.js';

export type ShapeName =
  | 'standalone-qcow2'
  | 'raw'
  | 'linked-clone'
  | 'chain-3'
  | 'qcow2-over-raw-template'
  | 'odd-paths'
  | 'outside-root'
  | 'transient'
  | 'paused'
  | 'shut-off'
  | 'uefi'
  | 'tpm'
  | 'cdrom-empty'
  | 'cdrom-iso'
  | 'block-device'
  | 'foreign-block-job'
  | 'leftover-overlay';

/** Bytes a builder put into an image below the VM's own one (template, middle): read through the chain. */
export interface BaseData {
  target: string;
  /** The image that holds them. */
  image: string;
  pattern: number;
  offset: string;
  length: string;
}

/** What a builder made, for the checks of a test. */
export interface ShapeFacts {
  /** The domain's state right after the build. */
  state: 'running' | 'paused' | 'shut off';
  persistent: boolean;
  /** Per disk target: the images from the top down that `qemu-img info --backing-chain` must show. */
  chains: Record<string, Array<{ path: string; format: ImageFormat }>>;
  /** Backing images the VM shares with others (templates): a backup or restore must leave them unchanged. */
  shared: Array<{ path: string; sha256: string }>;
  baseData: BaseData[];
  /** The other clone on the same template (running, not in the directory, not backed up). */
  sibling?: { name: string; image: string };
  /** The VM's UEFI variable store with a marker written while the VM was shut off. */
  nvram?: { path: string; offset: number; marker: Buffer };
  tpm?: { uuid: string; stateDir: string; stateFile: string };
  loop?: { device: string; file: string };
  /** A block copy another tool started (`virsh blockcopy --transient-job`), still running or ready. */
  foreignJob?: { target: string; destination: string };
  /** The VM runs on an overlay another tool made; the directory still names `image`. */
  leftoverOverlay?: { target: string; overlay: string; image: string };
}

export interface ShapeWorld extends World {
  shape: ShapeName;
  facts: ShapeFacts;
}

/**
 * What the product must do with a shape. `supported`: backup and restore work, and the VM keeps its
 * state and persistence through both (a paused VM stays paused, a transient one transient). `refused`:
 * the backup fails before anything changes, with `code` (core/exit-codes.ts).
 */
export type ShapeExpectation =
  | { backup: 'supported'; keeps: { state: ShapeFacts['state']; persistent: boolean }; notes?: string }
  | { backup: 'refused'; code: number; why: string };

export interface ShapeBuildOptions extends Pick<WorldOptions, 'backupIni' | 'memoryMiB'> {
  /** Label in the world's names; default the shape's name. */
  label?: string;
}

export interface ShapeSpec {
  name: ShapeName;
  /** What the shape is, and the trap it holds. */
  description: string;
  build(options?: ShapeBuildOptions): Promise<ShapeWorld>;
  expect: ShapeExpectation;
  /** Why the shape cannot be built on this machine (missing firmware, swtpm, loop devices), or undefined. */
  unavailable?(): Promise<string | undefined>;
  /** Build errors that say the machine cannot run the shape rather than that the harness is wrong. */
  environmentError?: RegExp;
}

// ---- images ------------------------------------------------------------------------------------

const IMAGE_MIB = 64;

/** `qemu-img create`, optionally over a backing image (`-b … -F …`, absolute path); directories made and opened. */
export async function createImage(path: string, format: ImageFormat, backing?: { path: string; format: ImageFormat }): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  openPath(dirname(path));
  const args = ['create', '-q', '-f', format];
  if (backing) args.push('-b', backing.path, '-F', backing.format);
  args.push(path);
  if (!backing) args.push(`${IMAGE_MIB}M`);
  await execa('qemu-img', args);
}

/** Known bytes in a template (0x7e) and a middle image (0x6d), at offsets no other test writes. */
export const TEMPLATE_DATA = { pattern: 0x7e, offset: '8M', length: '1M' } as const;
export const MIDDLE_DATA = { pattern: 0x6d, offset: '9M', length: '1M' } as const;

/** <virtualization root>/vm-templates/<pool>/: where stoney cloud keeps the templates of a pool's clones. */
function templateDir(ctx: WorldContext): string {
  return join(ctx.paths.virtualizationRoot, 'vm-templates', ctx.pool);
}

function ownImage(ctx: WorldContext, target = 'vda', ext = 'qcow2'): string {
  return join(ctx.diskDir, `${ctx.vm}-${target}.disk.${ext}`);
}

/** A UUID that starts with the run's tag (4 hex digits) when it has one, so leftovers name their run. */
function taggedUuid(): string {
  const uuid = randomUUID();
  const tag = runTag();
  return /^[0-9a-f]{4}$/.test(tag) ? `${tag}${uuid.slice(4)}` : uuid;
}

// ---- building ------------------------------------------------------------------------------------

interface Recipe {
  /** Makes the images, returns the devices and domain options, and the facts known before the VM exists. */
  prepare(ctx: WorldContext): Promise<{ disks: Array<string | WorldDisk>; domain?: WorldDomain; facts?: Partial<ShapeFacts> }>;
  /** Runs on the built world (a foreign job, another tool's overlay); returns more facts. */
  after?(w: World): Promise<Partial<ShapeFacts>>;
}

async function build(name: ShapeName, recipe: Recipe, o: ShapeBuildOptions = {}): Promise<ShapeWorld> {
  let early: Partial<ShapeFacts> = {};
  const w = await createWorld({
    label: o.label ?? name,
    ...(o.backupIni ? { backupIni: o.backupIni } : {}),
    ...(o.memoryMiB ? { memoryMiB: o.memoryMiB } : {}),
    shape: async (ctx) => {
      const r = await recipe.prepare(ctx);
      early = r.facts ?? {};
      return { disks: r.disks, ...(r.domain ? { domain: r.domain } : {}) };
    },
  });
  try {
    const late = recipe.after ? await recipe.after(w) : {};
    const chains: ShapeFacts['chains'] = {};
    for (const d of w.disks) chains[d.target] = [{ path: d.path, format: d.format }];
    const facts: ShapeFacts = {
      state: w.domainOptions.state ?? 'running',
      persistent: !w.domainOptions.transient,
      chains,
      shared: [],
      baseData: [],
      ...early,
      ...late,
    };
    return Object.assign(w, { shape: name, facts });
  } catch (e) {
    await w.close().catch(() => undefined);
    throw e;
  }
}

/** vda as a qcow2 clone over `backing` (the chain below included in the facts). */
async function cloneOver(ctx: WorldContext, below: Array<{ path: string; format: ImageFormat }>) {
  const image = ownImage(ctx);
  await createImage(image, 'qcow2', below[0]);
  return { image, chain: [{ path: image, format: 'qcow2' as ImageFormat }, ...below] };
}

async function template(ctx: WorldContext, file: string, format: ImageFormat, data: { pattern: number; offset: string; length: string }, backing?: { path: string; format: ImageFormat }) {
  const path = join(templateDir(ctx), file);
  await createImage(path, format, backing);
  await hostWrite(path, data.pattern, data.offset, data.length, format);
  return { path, format };
}

const standalone: Recipe = { prepare: async () => ({ disks: ['vda'] }) };

const SUPPORTED_RUNNING = { backup: 'supported', keeps: { state: 'running', persistent: true } } as const;

async function haveCommand(cmd: string): Promise<string | undefined> {
  const r = await execa('which', [cmd], { reject: false });
  return r.exitCode === 0 ? undefined : `${cmd} is not installed (scripts/setup.sh installs it)`;
}

const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const NVRAM_DIR = '/var/lib/libvirt/qemu/nvram';

export const SHAPES: readonly ShapeSpec[] = [
  {
    name: 'standalone-qcow2',
    description: "one qcow2 image of the VM's own, no backing file: today's stoney cloud VM",
    build: (o) => build('standalone-qcow2', standalone, o),
    expect: SUPPORTED_RUNNING,
  },
  {
    name: 'raw',
    description: 'a raw image (<driver type=raw>): qemu-img check refuses raw (63); overlays need -F raw',
    build: (o) =>
      build('raw', { prepare: async (ctx) => ({ disks: [{ target: 'vda', format: 'raw', file: `${ctx.vm}-vda.disk.raw` }] }) }, o),
    expect: SUPPORTED_RUNNING,
  },
  {
    name: 'linked-clone',
    description:
      'vm.qcow2 over vm-templates/<pool>/template.qcow2, and a sibling clone running on the same template: ' +
      'a commit without --shallow writes into the template; the top layer alone is no backup',
    build: (o) =>
      build(
        'linked-clone',
        {
          prepare: async (ctx) => {
            const t = await template(ctx, 'template.qcow2', 'qcow2', TEMPLATE_DATA);
            const { chain } = await cloneOver(ctx, [t]);
            const sibling = uniqueName(`${o?.label ?? 'linked-clone'}-sibling`);
            const siblingImage = join(ctx.diskDir, `${sibling}-vda.disk.qcow2`);
            await createImage(siblingImage, 'qcow2', t);
            const vm = await createTinyVm({ name: sibling, disks: [{ path: siblingImage, target: 'vda', create: false }], xmlFile: join(ctx.dir, `${sibling}.xml`) });
            ctx.onClose(() => vm.remove());
            return {
              disks: [{ target: 'vda', create: false }],
              facts: {
                chains: { vda: chain },
                shared: [{ path: t.path, sha256: await sha256File(t.path) }],
                baseData: [{ target: 'vda', image: t.path, ...TEMPLATE_DATA }],
                sibling: { name: sibling, image: siblingImage },
              },
            };
          },
        },
        o,
      ),
    expect: { ...SUPPORTED_RUNNING, notes: 'template unchanged (sha256), sibling keeps running on it' },
  },
  {
    name: 'chain-3',
    description: 'template.qcow2 ← middle.qcow2 ← vm.qcow2: only the top is the VM\'s own; indices of <backingStore> are not positions',
    build: (o) =>
      build(
        'chain-3',
        {
          prepare: async (ctx) => {
            const t = await template(ctx, 'template.qcow2', 'qcow2', TEMPLATE_DATA);
            const m = await template(ctx, 'middle.qcow2', 'qcow2', MIDDLE_DATA, t);
            const { chain } = await cloneOver(ctx, [m, t]);
            return {
              disks: [{ target: 'vda', create: false }],
              facts: {
                chains: { vda: chain },
                shared: [
                  { path: t.path, sha256: await sha256File(t.path) },
                  { path: m.path, sha256: await sha256File(m.path) },
                ],
                baseData: [
                  { target: 'vda', image: t.path, ...TEMPLATE_DATA },
                  { target: 'vda', image: m.path, ...MIDDLE_DATA },
                ],
              },
            };
          },
        },
        o,
      ),
    expect: { ...SUPPORTED_RUNNING, notes: 'template and middle unchanged' },
  },
  {
    name: 'qcow2-over-raw-template',
    description: 'vm.qcow2 over a raw template (-F raw): the backing format must be kept, probing a raw backing file is refused',
    build: (o) =>
      build(
        'qcow2-over-raw-template',
        {
          prepare: async (ctx) => {
            const t = await template(ctx, 'template.raw', 'raw', TEMPLATE_DATA);
            const { chain } = await cloneOver(ctx, [t]);
            return {
              disks: [{ target: 'vda', create: false }],
              facts: {
                chains: { vda: chain },
                shared: [{ path: t.path, sha256: await sha256File(t.path) }],
                baseData: [{ target: 'vda', image: t.path, ...TEMPLATE_DATA }],
              },
            };
          },
        },
        o,
      ),
    expect: { ...SUPPORTED_RUNNING, notes: 'raw template unchanged' },
  },
  {
    name: 'odd-paths',
    description:
      "images whose paths hold spaces, commas, '%', non-ASCII, an apostrophe and '&': commas must be doubled in " +
      '--diskspec/--memspec, XML escapes &/\', file:// URIs decode %20',
    build: (o) =>
      build(
        'odd-paths',
        {
          prepare: async (ctx) => ({
            disks: [
              { target: 'vda', dir: `vm-persistent/${ctx.pool}/dir with space,1`, file: 'dïsk%20ü,1.qcow2' },
              { target: 'vdb', dir: `vm-persistent/${ctx.pool}/o'brien & co`, file: `${ctx.vm} #2.qcow2` },
            ],
          }),
        },
        o,
      ),
    expect: SUPPORTED_RUNNING,
  },
  {
    name: 'outside-root',
    description: 'a disk outside the virtualization root: the backup layout keeps its whole directory (core/layout.ts intermediatePath)',
    build: (o) =>
      build('outside-root', { prepare: async (ctx) => ({ disks: [{ target: 'vda', path: join(ctx.dir, 'elsewhere', 'images', `${ctx.vm}-vda.qcow2`) }] }) }, o),
    expect: SUPPORTED_RUNNING,
  },
  {
    name: 'transient',
    description: "started with virsh create, no definition (FOSS-Cloud's way): undefine fails, define+start on restore makes it persistent",
    build: (o) => build('transient', { prepare: async () => ({ disks: ['vda'], domain: { transient: true } }) }, o),
    expect: { backup: 'supported', keeps: { state: 'running', persistent: false } },
  },
  {
    name: 'paused',
    description: 'virsh suspend after the start: a backup must not resume it; block nodes stay inactive after a memory snapshot of a paused VM',
    build: (o) => build('paused', { prepare: async () => ({ disks: ['vda'], domain: { state: 'paused' } }) }, o),
    expect: { backup: 'supported', keeps: { state: 'paused', persistent: true } },
  },
  {
    name: 'shut-off',
    description: 'defined, not running: no RAM state, a copy of the images is the backup',
    build: (o) => build('shut-off', { prepare: async () => ({ disks: ['vda'], domain: { state: 'shut off' } }) }, o),
    expect: { backup: 'supported', keeps: { state: 'shut off', persistent: true } },
  },
  {
    name: 'uefi',
    description:
      'OVMF pflash + per-VM VARS file (TCG: OVMF under KVM fails on this machine): undefine needs --nvram/--keep-nvram; ' +
      'a restore without the VARS file silently recreates blank variables',
    unavailable: async () => (existsSync(OVMF_CODE) && existsSync(OVMF_VARS) ? undefined : `OVMF firmware missing (${OVMF_CODE}); Debian package ovmf`),
    build: (o) =>
      build(
        'uefi',
        {
          prepare: async (ctx) => {
            const nvram = join(NVRAM_DIR, `${ctx.vm}_VARS.fd`);
            mkdirSync(NVRAM_DIR, { recursive: true });
            ctx.onClose(() => rmSync(nvram, { force: true }));
            // libvirt copies the template at the first start only when the file is missing: ours has the marker
            copyFileSync(OVMF_VARS, nvram);
            const marker = Buffer.from(`kvm-backup nvram marker ${ctx.vm} ${randomBytes(4).toString('hex')}`);
            writeNvramMarker(nvram, marker);
            return {
              disks: ['vda'],
              domain: { domainType: 'qemu', firmware: { loader: OVMF_CODE, nvramTemplate: OVMF_VARS, nvram } },
              facts: { nvram: { path: nvram, offset: NVRAM_MARKER_OFFSET, marker } },
            };
          },
        },
        o,
      ),
    expect: { ...SUPPORTED_RUNNING, notes: 'the VARS file (marker) comes back with the restore' },
  },
  {
    name: 'tpm',
    description: 'emulated TPM 2.0 (swtpm, tpm-crb): state in /var/lib/libvirt/swtpm/<uuid>/, deleted by undefine unless --keep-tpm',
    unavailable: async () => (await haveCommand('swtpm')) ?? (await haveCommand('swtpm_setup')),
    environmentError: /swtpm/i,
    build: (o) =>
      build(
        'tpm',
        {
          prepare: async (ctx) => {
            const uuid = taggedUuid();
            ctx.onClose(() => rmSync(tpmStateDir(uuid), { recursive: true, force: true }));
            return {
              disks: ['vda'],
              domain: { uuid, tpm: true },
              facts: { tpm: { uuid, stateDir: tpmStateDir(uuid), stateFile: `${tpmStateDir(uuid)}/tpm2/tpm2-00.permall` } },
            };
          },
        },
        o,
      ),
    expect: { ...SUPPORTED_RUNNING, notes: 'the TPM state comes back with the restore' },
  },
  {
    name: 'cdrom-empty',
    description: 'an empty IDE CD-ROM drive (sstDevice cdrom, no sstSourceFile): snapshot=external on it is an internal error',
    build: (o) => build('cdrom-empty', { prepare: async () => ({ disks: ['vda', { target: 'hdc', device: 'cdrom', bus: 'ide' }] }) }, o),
    expect: { ...SUPPORTED_RUNNING, notes: 'the drive stays empty, nothing of it in the backup' },
  },
  {
    name: 'cdrom-iso',
    description: 'a SATA CD-ROM with an ISO (raw, read-only): snapshot=external on it silently overlays the ISO',
    build: (o) =>
      build(
        'cdrom-iso',
        {
          prepare: async (ctx) => {
            const iso = join(ctx.paths.virtualizationRoot, 'iso', `${ctx.vm}-install.iso`);
            mkdirSync(dirname(iso), { recursive: true });
            openPath(dirname(iso));
            writeFileSync(iso, Buffer.alloc(2 << 20, 0x49));
            return {
              disks: ['vda', { target: 'sda', device: 'cdrom', bus: 'sata', format: 'raw', path: iso, create: false }],
              facts: { shared: [{ path: iso, sha256: await sha256File(iso) }] },
            };
          },
        },
        o,
      ),
    expect: { ...SUPPORTED_RUNNING, notes: 'the ISO unchanged and not overlaid; the VM still on it' },
  },
  {
    name: 'block-device',
    description: 'vda on a block device (a loop device here, an LVM volume at sites): stat size 0; renaming a file onto /dev/… destroys the node',
    unavailable: async () => {
      const r = await execa('losetup', ['-f'], { reject: false });
      return r.exitCode === 0 ? undefined : `no free loop device: ${r.stderr.trim()}`;
    },
    build: (o) =>
      build(
        'block-device',
        {
          prepare: async (ctx) => {
            const file = join(ctx.dir, `${ctx.vm}-vda.loop.img`);
            writeFileSync(file, '');
            await execa('truncate', ['-s', `${IMAGE_MIB}M`, file]);
            const device = await attachLoop(file);
            ctx.onClose(() => detachLoop(device, file));
            return { disks: [{ target: 'vda', type: 'block', format: 'raw', path: device }], facts: { loop: { device, file } } };
          },
        },
        o,
      ),
    expect: {
      backup: 'refused',
      code: Code.UNSUPPORTED_CONFIGURATION_PARAMETER,
      why: 'block devices are refused before anything changes (docs/vm-shapes.md): a restore would write into a device nothing locks',
    },
  },
  {
    name: 'foreign-block-job',
    description: 'a block copy another tool started (virsh blockcopy --transient-job), running or ready: snapshot and save are refused while it runs',
    build: (o) =>
      build(
        'foreign-block-job',
        {
          ...standalone,
          after: async (w) => {
            const destination = join(dirname(w.disks[0]!.path), `${w.vm}-vda.foreign-copy.qcow2`);
            await w.virsh.exec(['blockcopy', w.vm, 'vda', destination, '--transient-job'], {}, w.vm);
            if (!(await w.virsh.blockJob(w.vm, 'vda'))) throw new Error(`blockcopy on ${w.vm} left no block job`);
            return { foreignJob: { target: 'vda', destination } };
          },
        },
        o,
      ),
    expect: {
      backup: 'refused',
      code: Code.UNSUPPORTED_CONFIGURATION_PARAMETER,
      why: 'a block job the product did not start: refused before the snapshot (not retried: a copy may run for hours), never aborted or pivoted',
    },
  },
  {
    name: 'leftover-overlay',
    description:
      "the VM runs on an overlay another tool made (snapshot-create-as --disk-only --no-metadata, its own name): " +
      'the directory still names the image below',
    build: (o) =>
      build(
        'leftover-overlay',
        {
          ...standalone,
          after: async (w) => {
            const image = w.disks[0]!.path;
            const overlay = join(dirname(image), `${w.vm}-vda.other-tool-snap.qcow2`);
            await w.virsh.exec(
              ['snapshot-create-as', w.vm, 'other-tool', '--disk-only', '--no-metadata', '--atomic', '--diskspec', `vda,snapshot=external,file=${overlay}`],
              {},
              w.vm,
            );
            return {
              chains: { vda: [{ path: overlay, format: 'qcow2' }, { path: image, format: 'qcow2' }] },
              leftoverOverlay: { target: 'vda', overlay, image },
            };
          },
        },
        o,
      ),
    expect: {
      backup: 'refused',
      code: Code.BACKEND_XML_UNCONSISTENCY,
      why: 'the domain XML names an overlay the directory does not know (the disks in LDAP differ from the XML)',
    },
  },
];

/** The spec of one shape by name. */
export function shape(name: ShapeName): ShapeSpec {
  const s = SHAPES.find((x) => x.name === name);
  if (!s) throw new Error(`no shape ${name}`);
  return s;
}
