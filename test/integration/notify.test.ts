/**
 * Failure notifications on the real stack: a backup of a VM that libvirt does not know fails with 23
 * (CANNOT_FIND_MACHINE, no domain needed), and its failure path mails a real SMTP server (aiosmtpd
 * on 127.0.0.1 with STARTTLS and AUTH required, certificates made by openssl) and posts to a real
 * HTTP receiver, exactly once each, also when the notify activity is retried after both were sent
 * (a channel injected after them fails the first attempt). A mail server refusing the login and a
 * webhook answering 500 change nothing about the backup's code. The mail password appears neither
 * in the log lines nor in the workflow history.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import type { ControlDeps } from '../../activities/control/index.js';
import { Code } from '../../core/exit-codes.js';
import { codeOf } from '../../core/failures.js';
import { configureLogging } from '../../workers/logging.js';
import { addLeaf, readLeaf, startBackup } from '../helpers/backup.js';
import { makeTestPki } from '../helpers/certificates.js';
import { startHttpReceiver, type HttpReceiver } from '../helpers/http-receiver.js';
import { testDir } from '../helpers/names.js';
import { startSmtpServer, type SmtpServer } from '../helpers/smtp-server.js';
import { createWorld, type World } from '../helpers/world.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch((e) => console.error('cleanup:', e));
});

const MAIL_USER = 'kvm-backup@example.org';
const MAIL_PASSWORD = 'Sm7p-s3cret-9f2c';
const UI_URL = 'http://temporal-ui.test:8233';

/** Everything this process writes to stdout and stderr from now on (the workers' log lines). */
function captureOutput(): { text(): string; until(pattern: RegExp, count: number): Promise<void>; stop(): void } {
  let text = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => ((text += String(chunk)), out(chunk, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => ((text += String(chunk)), err(chunk, ...rest))) as typeof process.stderr.write;
  return {
    text: () => text,
    // the SDK hands activity log lines over a little later than they happen (each keeps its own time)
    until: async (pattern, count) => {
      const deadline = Date.now() + 10_000;
      while ((text.match(new RegExp(pattern.source, 'g')) ?? []).length < count && Date.now() < deadline) await sleep(50);
    },
    stop: () => {
      process.stdout.write = out;
      process.stderr.write = err;
    },
  };
}

async function setup(label: string, o: { mailPassword: string; webhookStatus?: (n: number) => number }): Promise<{ w: World; smtp: SmtpServer; hook: HttpReceiver }> {
  const dir = testDir(`${label}-servers`);
  const pki = await makeTestPki(join(dir, 'pki'));
  const caDir = join(dir, 'mail-ca');
  mkdirSync(caDir);
  copyFileSync(pki.ca.cert, join(caDir, 'ca.pem'));
  const smtp = await startSmtpServer({ dir, cert: pki.localhost.cert, key: pki.localhost.key, user: MAIL_USER, password: MAIL_PASSWORD });
  cleanups.push(() => smtp.stop());
  const hook = await startHttpReceiver(o.webhookStatus);
  cleanups.push(() => hook.close());
  const passwordFile = join(dir, 'mail.secret');
  writeFileSync(passwordFile, `${o.mailPassword}\n`, { mode: 0o600 });
  const w = await createWorld({
    label,
    noVm: true,
    temporalIni: { UI_URL },
    extraIni: {
      Mail: {
        SENDTO: 'ops@example.org, backup-admin@example.org',
        HOST: smtp.host,
        PORT: String(smtp.port),
        USERNAME: MAIL_USER,
        PASSWORD_FILE: passwordFile,
        FROMNAME: 'kvm-backup test',
        CA_DIR: caDir,
        SSL: 'starttls',
      },
      Notify: { WEBHOOK_URL: hook.url },
    },
  });
  cleanups.push(() => w.close());
  // info lines too, whatever threshold the test runner set (KVM_BACKUP_LOG_LEVEL): the test reads them
  configureLogging(w.config, { switches: { debug: false, info: true, warning: true, err: true } });
  return { w, smtp, hook };
}

/** A backup of the world's VM, which libvirt does not know: it fails in preflight with 23. */
async function failingBackup(w: World): Promise<{ handle: WorkflowHandle; dn: string; error: unknown }> {
  const leaf = await addLeaf(w);
  const handle = await startBackup(w, { leafDn: leaf.dn });
  const error = await handle.result().then(
    () => assert.fail('the backup of a VM libvirt does not know succeeded'),
    (e: unknown) => e,
  );
  return { handle, dn: leaf.dn, error };
}

/** The notify activity's events in the history: how often it was scheduled, and the attempt that completed. */
async function notifyEvents(handle: WorkflowHandle) {
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'notifyFailure');
  const ids = new Set(scheduled.map((e) => String(e.eventId)));
  const started = events.filter((e) => e.activityTaskStartedEventAttributes && ids.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)));
  return {
    json: JSON.stringify(history),
    scheduled: scheduled.length,
    activityId: scheduled[0]?.activityTaskScheduledEventAttributes?.activityId,
    attempts: started.map((e) => e.activityTaskStartedEventAttributes?.attempt),
    completed: events.some((e) => e.activityTaskCompletedEventAttributes && ids.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId))),
  };
}

test('a failed backup is mailed (STARTTLS, AUTH) and posted exactly once, also when the notify activity is retried; the password stays out of logs and history', async () => {
  const output = captureOutput();
  cleanups.push(async () => output.stop());
  const { w, smtp, hook } = await setup('notify', { mailPassword: MAIL_PASSWORD });
  // a third channel after mail and webhook fails the first attempt: the retry must not send those two again
  let faultCalls = 0;
  const injectFault = (d: ControlDeps): ControlDeps => ({
    ...d,
    notifier: {
      channels: [
        ...(d.notifier?.channels ?? []),
        {
          name: 'fault-after-send',
          send: async () => {
            if (++faultCalls === 1) throw new Error('injected: the first attempt fails after the mail and the webhook went out');
          },
        },
      ],
    },
  });
  await w.startWorkers({ wrapControlDeps: injectFault });

  const { handle, dn, error } = await failingBackup(w);
  await output.until(/"msg":"failure notification sent"/, 3);
  output.stop();
  assert.equal(codeOf(error), Code.CANNOT_FIND_MACHINE, String(error));
  assert.equal((await readLeaf(w, dn)).returnValue, '23', 'the leaf keeps the operation\'s code');
  const { runId } = await handle.describe();

  // the activity ran twice (attempt 1 failed after sending), scheduled once under its fixed ID
  assert.equal(faultCalls, 2, 'the injected channel failed the first attempt and passed the second');
  const events = await notifyEvents(handle);
  assert.deepEqual([events.scheduled, events.activityId, events.attempts, events.completed], [1, 'notify-failure', [2], true]);

  // exactly one mail, over STARTTLS, logged in, with the facts
  const mails = smtp.messages();
  assert.equal(mails.length, 1, `one mail, not ${mails.length}`);
  const mail = mails[0]!;
  assert.equal(mail.tls, true, 'the session was upgraded with STARTTLS');
  assert.equal(mail.login, MAIL_USER);
  assert.deepEqual(mail.rcptTos, ['ops@example.org', 'backup-admin@example.org']);
  assert.equal(mail.mailFrom, MAIL_USER);
  assert.equal(mail.headers['subject'], `kvm-backup: backup of ${w.vm} failed: CANNOT_FIND_MACHINE (23)`);
  assert.equal(mail.headers['message-id'], `<failure.${runId}@example.org>`);
  assert.equal(mail.headers['from'], 'kvm-backup test <kvm-backup@example.org>');
  assert.equal(mail.headers['to'], 'ops@example.org, backup-admin@example.org');
  const body = mail.body;
  for (const fact of [w.vm, w.node, dn, '23 CANNOT_FIND_MACHINE', handle.workflowId, runId]) assert.ok(body.includes(fact), `the mail names ${fact}:\n${body}`);
  const link = `${UI_URL}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}/${runId}/history`;
  assert.ok(body.includes(link), `the mail links ${link}`);

  // exactly one webhook call with the fields
  assert.equal(hook.requests.length, 1, `one webhook call, not ${hook.requests.length}`);
  const call = hook.requests[0]!;
  assert.equal(call.method, 'POST');
  assert.equal(call.url, '/hooks/kvm-backup?token=t0ken');
  assert.equal(call.headers['content-type'], 'application/json');
  assert.equal(call.headers['idempotency-key'], `${handle.workflowId}/${runId}`);
  const json = JSON.parse(call.body) as Record<string, unknown>;
  assert.deepEqual(
    { vm: json['vm'], node: json['node'], leaf: json['leaf'], code: json['code'], name: json['name'], operation: json['operation'], workflowId: json['workflowId'], runId: json['runId'], link: json['link'] },
    { vm: w.vm, node: w.node, leaf: dn, code: 23, name: 'CANNOT_FIND_MACHINE', operation: 'backup', workflowId: handle.workflowId, runId, link },
  );
  assert.match(String(json['message']), /CANNOT_FIND_MACHINE \(23\)|not defined|no domain/i);

  // the retry said why it sent nothing twice; the password is nowhere
  const logs = output.text();
  assert.equal((logs.match(/failure notification already sent by an earlier attempt/g) ?? []).length, 2, 'mail and webhook skipped on the retry');
  assert.equal((logs.match(/"msg":"failure notification sent"/g) ?? []).length, 3, 'mail, webhook, then the injected channel');
  assert.ok(!logs.includes(MAIL_PASSWORD), 'the password is not in the log lines');
  assert.ok(!events.json.includes(MAIL_PASSWORD), 'the password is not in the workflow history');
  assert.ok(!JSON.stringify(w.config).includes(MAIL_PASSWORD) && /\*\*\*/.test(JSON.stringify(w.config.notify)), 'the configuration serialises the password as ***');
});

test('a mail server refusing the login and a webhook answering 500 leave the backup\'s code as it was; a webhook that recovers is called once more, not again after', async () => {
  const output = captureOutput();
  cleanups.push(async () => output.stop());
  const wrongPassword = 'wr0ng-Passw0rd-771';
  const { w, smtp, hook } = await setup('notify-down', { mailPassword: wrongPassword, webhookStatus: (n) => (n === 0 ? 500 : 204) });
  await w.startWorkers();

  const started = Date.now();
  const { handle, dn, error } = await failingBackup(w);
  await output.until(/failure notification not sent/, 1);
  output.stop();
  assert.equal(codeOf(error), Code.CANNOT_FIND_MACHINE, String(error));
  assert.equal((await readLeaf(w, dn)).returnValue, '23');
  assert.ok(Date.now() - started < 90_000, 'the notification gives up within its retry policy');

  const events = await notifyEvents(handle);
  assert.deepEqual([events.scheduled, events.completed, events.attempts], [1, false, [5]], 'the activity failed for good after its 5 attempts');
  assert.equal(smtp.messages().length, 0, 'no mail with the wrong password');
  // attempt 1: 500; attempt 2: 204 (recorded); attempts 3-5: only the mail is tried again
  assert.deepEqual(hook.requests.map((r) => r.headers['idempotency-key']), [`${handle.workflowId}/${(await handle.describe()).runId}`, `${handle.workflowId}/${(await handle.describe()).runId}`]);
  const logs = output.text();
  assert.match(logs, /failure notification not sent/);
  assert.match(logs, /mail: .*(535|auth|Invalid login)/i);
  for (const secret of [wrongPassword, MAIL_PASSWORD]) {
    assert.ok(!logs.includes(secret), 'no password in the log lines');
    assert.ok(!events.json.includes(secret), 'no password in the history');
  }
});
