/**
 * The foundation against real services: a workflow on the real Temporal server reaches the node
 * worker of this world and reads the real libvirt; the real slapd serves the stoney cloud schema
 * and the demo directory; the tiny VM runs and takes guest writes that the host can verify.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { StoneyDirectory } from '../../adapters/ldap/stoney-directory.js';
import { value } from '../../core/ldap-entry.js';
import { vmDn } from '../../core/naming.js';
import { DEMO_CLOUD_WIDE_DN, DEMO_SERVICE_SUBTREE } from '../../stack/directory.js';
import { guestWrite, hostHasPattern } from '../../stack/tiny-vm.js';
import { probeNodeWorkflow } from '../../workflows/index.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { createWorld, type World } from '../helpers/world.js';

let world: World;
let workers: RunningWorkers;

before(async () => {
  world = await createWorld({ label: 'stack' });
  workers = await world.startWorkers();
});

after(async () => {
  await workers?.shutdown();
  await world?.close();
});

test('Temporal: a workflow reaches the node worker through its task queue and sees the running domain', async () => {
  const probe = await world.client.workflow.execute(probeNodeWorkflow, {
    taskQueue: world.controlQueue,
    workflowId: `probe/${world.node}`,
    args: [world.node],
  });
  assert.equal(probe.node, world.node);
  assert.match(probe.libvirt, /QEMU/);
  assert.deepEqual(
    probe.domains.find((d) => d.name === world.vm),
    { name: world.vm, state: 'running' },
  );
});

test('slapd: the stoney cloud schema and demo directory are served; the pool configuration applies', async () => {
  const vm = await world.directory.get(vmDn(DEMO_SERVICE_SUBTREE, world.vm));
  assert.ok(vm, 'VM entry exists');
  assert.equal(value(vm, 'sstNode'), world.node);
  const model = new StoneyDirectory(world.directory, { serviceSubtree: DEMO_SERVICE_SUBTREE, cloudWideConfigurationDn: DEMO_CLOUD_WIDE_DN });
  const resolved = await model.effectiveConfiguration(world.vm, world.pool);
  assert.equal(resolved.level, 'pool');
  assert.equal(resolved.config.iterations, 2);
  assert.equal(resolved.config.rootDirectory, `file://${world.paths.backupRoot}`);
  // the schema rejects what it does not know
  await assert.rejects(world.directory.modify(vmDn(DEMO_SERVICE_SUBTREE, world.vm), { sstNoSuchAttribute: 'x' }), /sstNoSuchAttribute|undefined/i);
});

test('libvirt: the tiny VM runs and a guest write is seen from the host, byte for byte', async () => {
  assert.deepEqual(await world.virsh.state(world.vm), { state: 'running', reason: 'booted' });
  const image = world.disks[0]!.path;
  assert.equal(await hostHasPattern(image, 0xa1, '0', '1M'), false, 'pattern absent before the write');
  await guestWrite(world.virsh, world.vm, 'vda', 0xa1, '0', '1M');
  assert.equal(await hostHasPattern(image, 0xa1, '0', '1M'), true);
  assert.equal(await hostHasPattern(image, 0xa1, '1M', '1M'), false, 'only the written range holds it');
});
