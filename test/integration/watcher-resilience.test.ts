/**
 * The watcher when things go wrong around it, on the real slapd and Temporal: a restart keeps its
 * place (no old request again, none written while it was down lost), a replayed request attaches
 * to its running workflow or gets the earlier answer, slapd restarting under it, and a leaf of a VM
 * on another node left alone.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { freePort } from '../../stack/daemon.js';
import { value } from '../../core/ldap-entry.js';
import { vmLockWorkflowId } from '../../core/naming.js';
import { DEMO_ROOT_DN, DEMO_SUFFIX } from '../../stack/directory.js';
import { startSlapd, type Slapd } from '../../stack/slapd.js';
import { vmLockWorkflow } from '../../workflows/index.js';
import { acquireVmLockSignal, releaseVmLockSignal } from '../../workflows/definitions.js';
import {
  addVmEntry, createLeaf, leafState, processed, request, runsOf, startTestWatcher, testOu, waitForLeaf,
} from '../helpers/watcher.js';
import { createWorld, type World } from '../helpers/world.js';

let w: World;
const extraDaemons: Slapd[] = [];
before(async () => {
  w = await createWorld({ label: 'wr' });
  await w.startWorkers();
});
after(async () => {
  for (const d of extraDaemons) await d.stop();
  await w?.close();
});

const deleted = (s: Parameters<typeof processed>[0]) => s?.mode === 'deleted' && processed(s);

async function waitForWorkflow(id: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await w.client.workflow.getHandle(id).describe();
      return;
    } catch (e) {
      if (!(e instanceof WorkflowNotFoundError) || Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

test('a restart keeps its place: old requests are not run again, requests written while it was down are', { timeout: 90_000 }, async () => {
  const cookieFile = w.config.database.cookieFile;
  const first = await startTestWatcher(w);
  const a = testOu();
  const aDn = await createLeaf(w, a, 'finished');
  await request(w, aDn, 'delete');
  await waitForLeaf(w, aDn, 'deleted', deleted);
  const polls = first.feed.polls;
  while (first.feed.polls < polls + 2) await sleep(20); // it has seen the answer too
  await first.stop();
  const cookie = readFileSync(cookieFile, 'utf8');
  assert.match(cookie, /^rid=001,csn=\d{14}\.\d{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}\n$/);
  const aCsn = value((await w.directory.get(aDn, ['entryCSN']))!, 'entryCSN')!;
  assert.ok(cookie.trim().slice('rid=001,csn='.length) >= aCsn, `the cookie (${cookie.trim()}) is past the answer on ${a} (${aCsn})`);

  // written while no watcher runs
  const b = testOu();
  const bDn = await createLeaf(w, b, 'delete');
  const second = await startTestWatcher(w);
  await waitForLeaf(w, bDn, 'deleted', deleted, 20_000);
  await second.stop();
  const began = second.log.lines.find((l) => l.message === 'following the directory');
  assert.equal(began?.fields?.['from'], cookie.trim().slice('rid=001,csn='.length), 'the second watcher started where the first stopped');
  assert.equal(second.log.lines.filter((l) => l.message.includes(`delete/${w.vm}/${a}`)).length, 0, 'the old request was not touched again');

  // the cookie lost (the original's default cookie): everything replays, nothing runs again
  rmSync(cookieFile);
  const third = await startTestWatcher(w);
  while (third.feed.polls < 3) await sleep(50);
  await third.stop();
  assert.equal(third.log.lines.filter((l) => /^delete: /.test(l.message)).length, 0, 'no workflow started on replay');
  assert.equal(await runsOf(w.client, `delete/${w.vm}/${a}`), 1);
  assert.equal(await runsOf(w.client, `delete/${w.vm}/${b}`), 1);
});

test('a request seen again while its workflow runs attaches to it; seen again after it completed, gets its answer', { timeout: 90_000 }, async () => {
  const cookieFile = w.config.database.cookieFile;
  // hold the VM's lock with a stand-in, so the backup waits before it writes anything on its leaf
  const standIn = await w.client.workflow.start(vmLockWorkflow, {
    taskQueue: w.controlQueue,
    workflowId: `test-stand-in/${w.vm}/${Date.now()}`,
    args: [{ vm: `${w.vm}-stand-in`, idleTimeout: '10 minutes' }],
  });
  const { runId } = await standIn.describe();
  await w.client.workflow.signalWithStart(vmLockWorkflow, {
    taskQueue: w.controlQueue,
    workflowId: vmLockWorkflowId(w.vm),
    args: [{ vm: w.vm }],
    signal: acquireVmLockSignal,
    signalArgs: [{ requestId: 'stand-in', workflowId: standIn.workflowId, runId, operation: 'test' }],
  });

  const first = await startTestWatcher(w);
  while (first.feed.polls < 2) await sleep(20);
  const cookieBefore = readFileSync(cookieFile, 'utf8');
  const ou = testOu();
  const dn = await createLeaf(w, ou, 'backup');
  const id = `backup/${w.vm}/${ou}`;
  await waitForWorkflow(id);
  await first.stop();
  // the watcher "crashed" before it saved its cookie: the next one sees the request again
  writeFileSync(cookieFile, cookieBefore);
  const second = await startTestWatcher(w);
  const deadline = Date.now() + 10_000;
  while (!second.log.lines.some((l) => l.message === `backup: backupWorkflow ${id}`)) {
    assert.ok(Date.now() < deadline, 'the second watcher dispatches the request again');
    await sleep(20);
  }
  assert.equal((await leafState(w, dn))?.mode, 'backup', 'the leaf still shows the request: the backup waits for the lock');
  await w.client.workflow.getHandle(vmLockWorkflowId(w.vm)).signal(releaseVmLockSignal, 'stand-in');
  await waitForLeaf(w, dn, 'finished', (s) => s?.mode === 'finished' && processed(s));
  await w.client.workflow.getHandle(id).result();
  assert.equal(await runsOf(w.client, id), 1, 'the duplicate attached to the running backup');
  assert.ok(!second.log.lines.some((l) => l.message.includes('already done')), 'not mistaken for a completed run');

  // fc-brokerd (or a replayed change) asks the same leaf again: the completed run answers, nothing runs
  await request(w, dn, 'backup');
  await waitForLeaf(w, dn, 'answered finished', (s) => s?.mode === 'finished' && processed(s), 10_000);
  assert.ok(second.log.lines.some((l) => l.message.includes('already done')));
  assert.equal(await runsOf(w.client, id), 1, 'a completed backup never runs twice for its leaf');
  await second.stop();
  await standIn.terminate('test done');
});

test('slapd down and back under the watcher: it backs off, reconnects and catches up', { timeout: 90_000 }, async () => {
  const watcher = await startTestWatcher(w);
  while (watcher.feed.polls < 2) await sleep(20);
  await w.slapd.stop();
  await sleep(1_500); // several polls fail meanwhile
  const again = await startSlapd({
    dir: join(w.dir, 'ldap'),
    port: Number(new URL(w.slapd.url).port),
    suffix: DEMO_SUFFIX,
    rootDn: DEMO_ROOT_DN,
    rootPassword: readFileSync(join(w.dir, 'ldap.secret'), 'utf8').trim(),
  });
  extraDaemons.push(again);
  const dn = await createLeaf(w, testOu(), 'delete');
  await waitForLeaf(w, dn, 'deleted', deleted, 40_000);
  await watcher.stop();
  assert.ok(watcher.log.lines.some((l) => l.level === 'warn' && l.message.includes('unreachable')), 'the outage was noticed');
  assert.ok(watcher.log.lines.some((l) => l.message.includes('reachable again')), 'and the end of it');
  // and a quick restart (slapd gone for a few ms only) is survived as well
  extraDaemons.push(await again.restart());
  const watcher2 = await startTestWatcher(w);
  const dn2 = await createLeaf(w, testOu(), 'delete');
  await waitForLeaf(w, dn2, 'deleted', deleted, 40_000);
  await watcher2.stop();
});

test("a leaf of a VM on another node is left alone", { timeout: 60_000 }, async () => {
  const watcher = await startTestWatcher(w);
  const other = `${w.vm}-elsewhere`;
  await addVmEntry(w, other, 'some-other-node');
  const ou = testOu();
  const otherDn = await createLeaf(w, ou, 'backup', other);
  // a request of ours written after it: once it is answered, the other leaf has been looked at
  const mine = await createLeaf(w, testOu(), 'delete');
  await waitForLeaf(w, mine, 'deleted', deleted, 20_000);
  await watcher.stop();
  assert.deepEqual(await leafState(w, otherDn), { mode: 'backup', state: '0', rv: '0' });
  await assert.rejects(w.client.workflow.getHandle(`backup/${other}/${ou}`).describe(), WorkflowNotFoundError);
});

test('Temporal unreachable: the request waits, unanswered and not passed by the cookie, and runs once it is back', { timeout: 60_000 }, async () => {
  const cookieFile = w.config.database.cookieFile;
  const nowhere = await Connection.lazy({ address: `127.0.0.1:${await freePort()}` });
  const away = await startTestWatcher(w, { temporal: new Client({ connection: nowhere }), startTimeoutMs: 1_000 });
  const dn = await createLeaf(w, testOu(), 'delete');
  const csnOfRequest = value((await w.directory.get(dn, ['entryCSN']))!, 'entryCSN')!;
  const deadline = Date.now() + 10_000;
  while (!away.log.lines.some((l) => l.message.includes('unreachable'))) {
    assert.ok(Date.now() < deadline, 'the failed start is noticed');
    await sleep(50);
  }
  await sleep(1_000);
  await away.stop();
  await nowhere.close();
  assert.deepEqual(await leafState(w, dn), { mode: 'delete', state: '0', rv: '0' }, 'not answered');
  const cookie = readFileSync(cookieFile, 'utf8').trim().slice('rid=001,csn='.length);
  assert.ok(cookie < csnOfRequest, `the cookie (${cookie}) stays before the request (${csnOfRequest})`);
  const back = await startTestWatcher(w);
  await waitForLeaf(w, dn, 'deleted', deleted, 20_000);
  await back.stop();
});
