/**
 * The VM-shape harness on the real stack: every builder of test/helpers/shapes.ts builds its world
 * once, and what it promises is checked from the host (run state and persistence, backing chains,
 * the sibling clone on the shared template, directory devices = XML devices by device type, known
 * bytes written and read back in the disk's format, the NVRAM marker, the TPM state file, the loop
 * device); then everything is removed and its absence checked. A shape this machine cannot run is
 * reported as skipped with the reason, never passed.
 *
 * KVM_BACKUP_SHAPES=raw,paused runs only those shapes (the others are reported skipped).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, test } from 'node:test';
import {
  byDeviceType,
  chainPaths,
  diskHas,
  ldapDevices,
  loopBackingFile,
  nvramVariableStore,
  readNvramMarker,
  runState,
  sha256File,
  writeDisk,
  xmlDevices,
} from '../helpers/host-probes.js';
import { SHAPES, type ShapeWorld } from '../helpers/shapes.js';

const timings: string[] = [];
const only = process.env['KVM_BACKUP_SHAPES']?.split(',').map((x) => x.trim());

/** Each disk gets its own pattern per shape, so a read can only succeed on the bytes of this write. */
const GUEST_PATTERN = 0xa0;

async function checkState(w: ShapeWorld): Promise<void> {
  const s = await runState(w.virsh, w.vm);
  assert.equal(s.exists, true, 'domain exists');
  assert.equal(s.state, w.facts.state, `state ${s.state} (${s.reason})`);
  if (w.facts.state === 'paused') assert.equal(s.reason, 'user');
  assert.equal(s.persistent, w.facts.persistent, 'persistence');
}

async function checkChains(w: ShapeWorld): Promise<void> {
  const xml = await xmlDevices(w.virsh, w.vm);
  for (const [target, chain] of Object.entries(w.facts.chains)) {
    const top = xml.find((d) => d.target === target);
    assert.ok(top, `${target} in the domain XML`);
    assert.equal(top.source, chain[0]!.path, `${target} runs on its top image`);
    assert.equal(top.format, chain[0]!.format, `${target} driver type`);
    assert.deepEqual(await chainPaths(top.source), chain.map((c) => c.path), `${target} backing chain`);
  }
}

async function checkDirectory(w: ShapeWorld): Promise<void> {
  const ldap = byDeviceType(await ldapDevices(w));
  const xml = byDeviceType(await xmlDevices(w.virsh, w.vm));
  const left = w.facts.leftoverOverlay;
  if (left) {
    // by design the directory names the image, the XML the other tool's overlay
    assert.notDeepEqual(ldap, xml);
    assert.ok(ldap['disk']!.some((l) => l.endsWith(` ${left.image}`)), 'directory names the image');
    assert.ok(xml['disk']!.some((l) => l.endsWith(` ${left.overlay}`)), 'XML names the overlay');
    return;
  }
  assert.deepEqual(ldap, xml, 'directory devices = domain XML devices, by device type');
  assert.deepEqual(
    w.disks.map((d) => d.target),
    (ldap['disk'] ?? []).map((l) => l.split(' ')[0]),
    'world.disks are the directory disks',
  );
}

async function checkGuestData(w: ShapeWorld): Promise<void> {
  for (const b of w.facts.baseData) assert.equal(await diskHas(w, b.target, b.pattern, b.offset, b.length), true, `${b.target} reads ${b.image}'s bytes through the chain`);
  for (const [i, d] of w.disks.entries()) {
    const pattern = GUEST_PATTERN + i;
    assert.equal(await diskHas(w, d.target, pattern, '0', '1M'), false, `${d.target}: pattern absent before the write`);
    await writeDisk(w, d.target, pattern, '0', '1M');
    assert.equal(await diskHas(w, d.target, pattern, '0', '1M'), true, `${d.target} (${d.format}): written bytes read back from the host`);
    assert.equal(await diskHas(w, d.target, pattern, '1M', '1M'), false, `${d.target}: only the written range`);
  }
  // writing went into the VM's own image: shared images (templates, the ISO) are unchanged
  for (const s of w.facts.shared) assert.equal(await sha256File(s.path), s.sha256, `${s.path} unchanged`);
  await checkState(w);
}

async function checkSpecifics(w: ShapeWorld, t: { diagnostic(m: string): void }): Promise<void> {
  const f = w.facts;
  if (f.sibling) {
    assert.equal((await runState(w.virsh, f.sibling.name)).state, 'running', 'sibling clone runs');
    const template = f.shared[0]!.path;
    assert.deepEqual(await chainPaths(f.sibling.image), [f.sibling.image, template], 'sibling on the same template');
    assert.ok((await chainPaths(w.disks[0]!.path)).includes(template), 'VM on the template');
  }
  if (f.nvram) {
    assert.deepEqual(readNvramMarker(f.nvram.path, f.nvram.marker.length, f.nvram.offset), f.nvram.marker, 'NVRAM marker');
    // the firmware really runs: OVMF writes its variables at boot (slow under TCG); the marker survives that
    const blank = nvramVariableStore('/usr/share/OVMF/OVMF_VARS_4M.fd');
    const started = Date.now();
    while (nvramVariableStore(f.nvram.path).equals(blank) && Date.now() - started < 90_000) await new Promise((r) => setTimeout(r, 1_000));
    const wrote = !nvramVariableStore(f.nvram.path).equals(blank);
    t.diagnostic(wrote ? `OVMF wrote its variables after ${Date.now() - started} ms` : 'OVMF wrote no variable within 90 s');
    assert.ok(wrote, 'OVMF ran and wrote its variable store');
    assert.deepEqual(readNvramMarker(f.nvram.path, f.nvram.marker.length, f.nvram.offset), f.nvram.marker, 'NVRAM marker after the firmware ran');
  }
  if (f.tpm) {
    assert.ok(existsSync(f.tpm.stateFile), `TPM state file ${f.tpm.stateFile}`);
    t.diagnostic(`TPM state sha256 ${(await sha256File(f.tpm.stateFile)).slice(0, 16)}…`);
  }
  if (f.loop) {
    assert.equal(loopBackingFile(f.loop.device), f.loop.file, 'loop device attached to its file');
    assert.equal((await xmlDevices(w.virsh, w.vm)).find((d) => d.target === 'vda')?.type, 'block');
  }
  if (f.foreignJob) {
    const job = await w.virsh.blockJob(w.vm, f.foreignJob.target);
    assert.match(job?.type ?? 'none', /copy/i, 'the foreign block copy still runs');
  }
  for (const c of w.cdroms) {
    const x = (await xmlDevices(w.virsh, w.vm)).find((d) => d.target === c.target);
    assert.equal(x?.device, 'cdrom');
    assert.equal(x?.source, c.path ?? '', `${c.target} ${c.path ? 'holds the ISO' : 'is empty'}`);
  }
}

/** After close(): nothing of the world left on the host. */
async function checkGone(w: ShapeWorld): Promise<void> {
  assert.equal((await runState(w.virsh, w.vm)).exists, false, `${w.vm} removed`);
  if (w.facts.sibling) assert.equal((await runState(w.virsh, w.facts.sibling.name)).exists, false, 'sibling removed');
  if (w.facts.loop) assert.equal(loopBackingFile(w.facts.loop.device) === w.facts.loop.file, false, 'loop device detached');
  if (w.facts.nvram) assert.equal(existsSync(w.facts.nvram.path), false, 'NVRAM file removed');
  if (w.facts.tpm) assert.equal(existsSync(w.facts.tpm.stateDir), false, 'TPM state removed');
}

for (const spec of SHAPES) {
  test(`shape ${spec.name}: ${spec.description}`, async (t) => {
    if (only && !only.includes(spec.name)) {
      t.skip(`not in KVM_BACKUP_SHAPES=${only.join(',')}`);
      return;
    }
    const missing = await spec.unavailable?.();
    if (missing) {
      console.log(`shapes-harness: ${spec.name} SKIPPED: ${missing}`);
      t.skip(missing);
      return;
    }
    const started = Date.now();
    let w: ShapeWorld;
    try {
      w = await spec.build();
    } catch (e) {
      const text = `${(e as { stderr?: string }).stderr ?? ''} ${(e as Error).message}`;
      if (spec.environmentError?.test(text)) {
        console.log(`shapes-harness: ${spec.name} SKIPPED, this machine cannot run it: ${text.trim()}`);
        t.skip(text.trim());
        return;
      }
      throw e;
    }
    const built = Date.now() - started;
    try {
      await checkState(w);
      await checkChains(w);
      await checkDirectory(w);
      await checkGuestData(w);
      await checkSpecifics(w, t);
    } finally {
      const closing = Date.now();
      await w.close();
      await checkGone(w);
      timings.push(`${spec.name}: build ${built} ms, checks ${closing - started - built} ms, close ${Date.now() - closing} ms`);
      t.diagnostic(timings.at(-1)!);
    }
  });
}

after(() => {
  console.log(`shapes-harness timings:\n  ${timings.join('\n  ')}`);
});
