/**
 * The stoney cloud protocol through the watcher, on the real slapd, Temporal and VM: every
 * transition of the protocol (docs/ldap-protocol.md) as fc-brokerd writes it (initialized → snapshot → merge →
 * retain → finished → delete → deleted → removed), the one-go `backup` request, the answer 18 for
 * an unknown mode.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { leafDn, leafTimestamp } from '../../core/naming.js';
import { processedChanges } from '../../core/provisioning.js';
import { DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { createWorld, type World } from '../helpers/world.js';
import {
  createLeaf, leafState, leafWrites, processed, recordLeaf, request, startTestWatcher, testOu, waitForLeaf,
} from '../helpers/watcher.js';

let w: World;
let watcher: Awaited<ReturnType<typeof startTestWatcher>>;
before(async () => {
  w = await createWorld({ label: 'wp' });
  await w.startWorkers();
  watcher = await startTestWatcher(w);
});
after(async () => {
  await watcher?.stop();
  await w?.close();
});

const backupDir = (ou: string) => join(w.paths.backupRoot, 'vm-persistent', w.pool, w.vm, ou);

/**
 * Requests one step as fc-brokerd does and waits for its answer. Meanwhile the leaf is sampled:
 * the …ed mode must never be seen without its return value and stamp (they come in one modify).
 */
async function step(dn: string, mode: string, done: string): Promise<void> {
  const recorder = recordLeaf(w, dn);
  await request(w, dn, mode);
  const final = await waitForLeaf(w, dn, `${done} + stamp`, (s) => s?.mode === done && processed(s));
  const seen = await recorder.stop();
  assert.equal(final?.rv, '0', `${mode}: return value`);
  for (const s of seen.filter((x) => x.mode === done)) assert.ok(processed(s) && s.rv === '0', `${done} seen without its answer: ${JSON.stringify(s)}`);
}

test("fc-brokerd's state machine, one step at a time", { timeout: 120_000 }, async () => {
  const ou = leafTimestamp(new Date());
  // fc-brokerd creates the leaf `initialized`: nothing happens yet
  const dn = await createLeaf(w, ou, 'initialized');

  await step(dn, 'snapshot', 'snapshotted');
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).length, 1);

  await step(dn, 'merge', 'merged');
  assert.deepEqual((await w.virsh.blockDevices(w.vm)).map((d) => d.source), [w.disks[0]!.path], 'back on its own image');

  await step(dn, 'retain', 'retained');
  assert.ok(readdirSync(backupDir(ou)).includes(`SHA256SUMS.${ou}`), 'the export is complete');

  // fc-brokerd closes the run
  await w.directory.modify(dn, { sstProvisioningMode: 'finished', ...processedChanges(new Date()) });

  // …and later asks for its deletion (retention)
  await step(dn, 'delete', 'deleted');
  assert.equal(existsSync(backupDir(ou)), false, 'the iteration is gone');
  await w.directory.deleteTree(dn); // fc-brokerd removes the leaf on `deleted`

  // each step ran under its leaf-derived ID and wrote exactly …ing, then …ed + 0 + stamp in one modify
  for (const [id, running, done] of [
    [`backup/${w.vm}/${ou}/snapshot`, 'snapshotting', 'snapshotted'],
    [`backup/${w.vm}/${ou}/merge`, 'merging', 'merged'],
    [`backup/${w.vm}/${ou}/retain`, 'retaining', 'retained'],
    [`delete/${w.vm}/${ou}`, 'deleting', 'deleted'],
  ] as const) {
    await w.client.workflow.getHandle(id).result(); // ends just after its last answer (releasing the VM lock)
    const writes = await leafWrites(w.client, id);
    assert.deepEqual(writes.map((c) => c['sstProvisioningMode']), [running, done], id);
    assert.equal(writes[1]!['sstProvisioningReturnValue'], '0', id);
    assert.match(String(writes[1]!['sstProvisioningState']), /^\d{8}T\d{6}Z$/, id);
  }
});

test('a new leaf asking for `backup` runs every phase in one go, mirroring each mode, ending finished', { timeout: 120_000 }, async () => {
  const ou = leafTimestamp(new Date(Date.now() + 60_000));
  const dn = await createLeaf(w, ou, 'backup');
  await waitForLeaf(w, dn, 'finished', (s) => s?.mode === 'finished' && processed(s));
  assert.equal((await leafState(w, dn))?.rv, '0');
  const id = `backup/${w.vm}/${ou}`;
  await w.client.workflow.getHandle(id).result();
  // every mode, in order, each …ed with its return value in the same modify
  const writes = await leafWrites(w.client, id);
  assert.deepEqual(
    writes.map((c) => c['sstProvisioningMode']),
    ['snapshotting', 'snapshotted', 'merging', 'merged', 'retaining', 'retained', 'finished'],
  );
  for (const c of writes.filter((x) => /ed$/.test(String(x['sstProvisioningMode'])))) assert.equal(c['sstProvisioningReturnValue'], '0', JSON.stringify(c));
  assert.match(String(writes.at(-1)!['sstProvisioningState']), /^\d{8}T\d{6}Z$/, 'finished carries the processed stamp');
});

test('an unknown mode is answered 18 and stamped; the mode is left as written', { timeout: 30_000 }, async () => {
  const dn = await createLeaf(w, testOu(), 'frobnicate');
  const s = await waitForLeaf(w, dn, 'answer 18', processed, 10_000);
  assert.deepEqual(s, { mode: 'frobnicate', state: s!.state, rv: '18' });
});
