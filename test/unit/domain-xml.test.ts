/**
 * core/domain-xml.ts on the disk shapes libvirt 9.0 writes (docs/backup.md, "Snapshot"): standalone
 * images, a linked clone's nested chain, the auto-probed chain, block jobs, CD-ROMs, block and
 * network disks, awkward paths, UEFI and TPM. Every rewrite is read back with the parser.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainXmlError, domainDisks, domainInfo, retargetDisks, withOriginalDisks, withoutBackingStores } from '../../core/domain-xml.js';

/** The XML text of one path in an attribute quoted with '…', as libvirt writes it. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

const domain = (disks: string, extra = '') => `<domain type='kvm'>
  <name>vm-1</name>
  <uuid>6c3e2a4e-0f55-4c1e-9d1c-2b7a1d8f0a11</uuid>
  <memory unit='KiB'>262144</memory>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${disks}
    <interface type='network'>
      <source network='default'/>
    </interface>${extra}
  </devices>
</domain>
`;

// save-image-dumpxml of a standalone image
const STANDALONE = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/v/vm.qcow2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>`;

// dumpxml of a linked clone running on our overlay (measured: overlay index=3 → vm.qcow2 index=1 → template index=2)
const LINKED_LIVE = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/v/vm.qcow2.overlay-X' index='3'/>
      <backingStore type='file' index='1'>
        <format type='qcow2'/>
        <source file='/v/vm.qcow2'/>
        <backingStore type='file' index='2'>
          <format type='qcow2'/>
          <source file='/v/template.qcow2'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>`;

// save-image-dumpxml of a linked clone with its chain spelled out
const LINKED_SAVED = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/v/vm.qcow2'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='/v/template.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>`;

// a chain libvirt did not report (probed at start): no <backingStore> at all
const PROBED = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/v/vm.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>`;

// someone else's `virsh blockcopy` running on the disk
const MIRRORED = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/v/vm.qcow2' index='1'/>
      <backingStore/>
      <mirror type='file' file='/x/copy.qcow2' format='qcow2' job='copy' ready='yes'>
        <format type='qcow2'/>
        <source file='/x/copy.qcow2' index='2'/>
        <backingStore/>
      </mirror>
      <target dev='vda' bus='virtio'/>
    </disk>`;

const CDROM_EMPTY = `    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
      <address type='drive' controller='0' bus='1' target='0' unit='0'/>
    </disk>`;

const CDROM_ISO = `    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/iso/debian 12&amp;b.iso'/>
      <backingStore/>
      <target dev='hdd' bus='ide'/>
      <readonly/>
    </disk>`;

const BLOCK = `    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/loop0' index='1'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
    </disk>`;

// a block disk after an external snapshot: the overlay is a file, the block device below it
const BLOCK_ON_OVERLAY = `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/x/loop0.overlay-X' index='2'/>
      <backingStore type='block' index='1'>
        <format type='raw'/>
        <source dev='/dev/loop0'/>
        <backingStore/>
      </backingStore>
      <target dev='vdb' bus='virtio'/>
    </disk>`;

const NETWORK = `    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'>
        <host name='mon1' port='6789'/>
      </source>
      <target dev='vdc' bus='virtio'/>
    </disk>`;

const MOVE = new Map([['/v/vm.qcow2', '/v/vm.qcow2.overlay-X']]);

/** The elements of the first disk block of an XML text (for asserting what a rewrite left). */
function firstDisk(xml: string): string {
  return xml.slice(xml.indexOf('<disk'), xml.indexOf('</disk>') + 7);
}

test('standalone disk: <backingStore/> ends an empty chain', () => {
  const [d] = domainDisks(domain(STANDALONE));
  assert.deepEqual(d, {
    device: 'disk',
    type: 'file',
    target: 'vda',
    bus: 'virtio',
    source: '/v/vm.qcow2',
    format: 'qcow2',
    readonly: false,
    chain: [],
    emptyBackingStore: true,
    mirror: false,
  });
});

test('linked clone on our overlay: the 2-deep nested chain, whatever the index numbers', () => {
  const [d] = domainDisks(domain(LINKED_LIVE));
  assert.equal(d!.source, '/v/vm.qcow2.overlay-X');
  assert.deepEqual(d!.chain, [
    { type: 'file', format: 'qcow2', source: '/v/vm.qcow2' },
    { type: 'file', format: 'qcow2', source: '/v/template.qcow2' },
  ]);
  assert.equal(d!.backingSource, '/v/vm.qcow2');
  assert.equal(d!.emptyBackingStore, true);
});

test('auto-probed chain: no <backingStore>, no chain, not ended', () => {
  const [d] = domainDisks(domain(PROBED));
  assert.deepEqual(d!.chain, []);
  assert.equal(d!.backingSource, undefined);
  assert.equal(d!.emptyBackingStore, false);
  assert.equal('backingSource' in d!, false);
});

test("a disk with <mirror>: someone's block job; the disk's own source, not the mirror's", () => {
  const [d] = domainDisks(domain(MIRRORED));
  assert.equal(d!.mirror, true);
  assert.equal(d!.source, '/v/vm.qcow2');
  assert.deepEqual(d!.chain, []);
});

test('CD-ROMs (empty and with an ISO), block and network disks, in document order', () => {
  const disks = domainDisks(domain([CDROM_EMPTY, CDROM_ISO, BLOCK, BLOCK_ON_OVERLAY, NETWORK].join('\n')));
  assert.deepEqual(
    disks.map((d) => [d.device, d.type, d.target, d.source, d.readonly]),
    [
      ['cdrom', 'file', 'hdc', '', true],
      ['cdrom', 'file', 'hdd', '/iso/debian 12&b.iso', true],
      ['disk', 'block', 'vdb', '/dev/loop0', false],
      ['disk', 'file', 'vdb', '/x/loop0.overlay-X', false],
      ['disk', 'network', 'vdc', 'pool/image', false],
    ],
  );
  assert.deepEqual(disks[3]!.chain, [{ type: 'block', format: 'raw', source: '/dev/loop0' }]);
  assert.equal(disks[4]!.format, 'raw');
});

test('attributes quoted with " and with \'; comments in <devices> and in a <disk> are not read', () => {
  const xml = `<domain type="kvm"><name>q</name><devices>
    <!-- <disk type='file' device='disk'><source file='/commented/out.qcow2'/><target dev='vdz'/></disk> -->
    <disk type="file" device='disk'>
      <driver name="qemu" type='qcow2'/>
      <!-- <source file='/not/this.qcow2'/> -->
      <source file="/v/vm.qcow2"/>
      <!-- an empty chain: <backingStore/> -->
      <target dev="vda" bus='virtio'/>
    </disk>
  </devices></domain>`;
  const disks = domainDisks(xml);
  assert.equal(disks.length, 1);
  assert.equal(disks[0]!.source, '/v/vm.qcow2');
  assert.equal(disks[0]!.target, 'vda');
  assert.equal(disks[0]!.emptyBackingStore, false);
  const out = retargetDisks(xml, MOVE);
  assert.equal(domainDisks(out)[0]!.source, '/v/vm.qcow2.overlay-X');
  assert.match(out, /<!-- <disk type='file' device='disk'><source file='\/commented\/out.qcow2'\/><target dev='vdz'\/><\/disk> -->/);
  assert.match(out, /<!-- <source file='\/not\/this.qcow2'\/> -->/);
  assert.match(out, /<!-- an empty chain: <backingStore\/> -->/);
});

test('retargetDisks, standalone image: the overlay, no <backingStore>, other disks untouched', () => {
  const other = STANDALONE.replace(/vm\.qcow2/, 'data.qcow2').replace("'vda'", "'vdb'");
  const out = retargetDisks(domain([STANDALONE, other, CDROM_EMPTY].join('\n')), MOVE);
  const disks = domainDisks(out);
  assert.equal(disks[0]!.source, '/v/vm.qcow2.overlay-X');
  assert.equal(disks[0]!.format, 'qcow2');
  assert.deepEqual(disks[0]!.chain, []);
  assert.equal(disks[0]!.emptyBackingStore, false);
  assert.doesNotMatch(firstDisk(out), /backingStore/);
  // the other disks as they were
  assert.deepEqual(disks[1], domainDisks(domain(other))[0]);
  assert.deepEqual(disks[2], domainDisks(domain(CDROM_EMPTY))[0]);
});

test('retargetDisks, linked clone: the whole saved chain goes, not only the empty <backingStore/> (docs/backup.md)', () => {
  const saved = domain(LINKED_SAVED);
  assert.deepEqual(domainDisks(saved)[0]!.chain, [{ type: 'file', format: 'qcow2', source: '/v/template.qcow2' }]);
  const out = retargetDisks(saved, MOVE);
  const [d] = domainDisks(out);
  assert.equal(d!.source, '/v/vm.qcow2.overlay-X');
  // keeping <backingStore>…template…</backingStore> would put the overlay onto the template and skip vm.qcow2
  assert.deepEqual(d!.chain, []);
  assert.equal(d!.emptyBackingStore, false);
  assert.doesNotMatch(firstDisk(out), /backingStore|template/);
  // the live shape (nested two deep) too
  const live = retargetDisks(domain(LINKED_LIVE), new Map([['/v/vm.qcow2.overlay-X', '/v/other.ovl']]));
  assert.deepEqual(domainDisks(live)[0]!.chain, []);
  assert.doesNotMatch(firstDisk(live), /backingStore|template/);
});

test('retargetDisks: a raw image gets a qcow2 overlay, so its driver type becomes qcow2', () => {
  const raw = STANDALONE.replace("type='qcow2'", "type='raw'").replace(/vm\.qcow2/, 'vm.raw');
  const out = retargetDisks(domain(raw), new Map([['/v/vm.raw', '/v/vm.raw.overlay-X']]));
  assert.deepEqual(
    (({ source, format }) => ({ source, format }))(domainDisks(out)[0]!),
    { source: '/v/vm.raw.overlay-X', format: 'qcow2' },
  );
  // a disk without <driver> gets one
  const bare = `<domain><devices><disk type='file' device='disk'><source file='/v/vm.qcow2'/><target dev='vda'/></disk></devices></domain>`;
  assert.equal(domainDisks(retargetDisks(bare, MOVE))[0]!.format, 'qcow2');
  assert.match(retargetDisks(bare, MOVE), /<disk type="file" device="disk"><driver name="qemu" type="qcow2"\/><source/);
});

test('retargetDisks leaves block, network and source-less disks alone; nothing to change returns the input as is', () => {
  const xml = domain([BLOCK, NETWORK, CDROM_EMPTY].join('\n'));
  const moves = new Map([['/dev/loop0', '/x'], ['pool/image', '/y'], ['', '/z']]);
  assert.equal(retargetDisks(xml, moves), xml);
  assert.equal(withOriginalDisks(xml, moves), xml);
  assert.equal(withoutBackingStores(xml, ['/nowhere']), xml);
});

test('withOriginalDisks: the image back, its format, no index, no chain; the mirror and other disks untouched', () => {
  const xml = domain([LINKED_LIVE, BLOCK_ON_OVERLAY, CDROM_ISO].join('\n'));
  const out = withOriginalDisks(
    xml,
    new Map([
      ['/v/vm.qcow2.overlay-X', '/v/vm.qcow2'],
      ['/x/loop0.overlay-X', '/x/disk.raw'],
    ]),
    new Map([['/x/disk.raw', 'raw']]),
  );
  const disks = domainDisks(out);
  assert.deepEqual(disks[0], domainDisks(domain(PROBED))[0]); // vm.qcow2, qcow2, no <backingStore>
  assert.deepEqual(
    (({ source, format, chain }) => ({ source, format, chain }))(disks[1]!),
    { source: '/x/disk.raw', format: 'raw', chain: [] }, // libvirt's definition said qcow2 after the snapshot
  );
  assert.deepEqual(disks[2], domainDisks(xml)[2]);
  assert.doesNotMatch(out, /index=|overlay/);
  assert.match(out, /<alias name="virtio-disk0"\/>/);
  // without formats the driver stays as it was
  assert.equal(domainDisks(withOriginalDisks(xml, new Map([['/x/loop0.overlay-X', '/x/disk.raw']])))[1]!.format, 'qcow2');
});

test('withoutBackingStores: all disks, or only those with the given sources', () => {
  const xml = domain([LINKED_SAVED, BLOCK, MIRRORED.replace("'vda'", "'vde'").replace('/v/vm.qcow2', '/v/m.qcow2')].join('\n'));
  const all = domainDisks(withoutBackingStores(xml));
  assert.deepEqual(all.map((d) => [d.chain.length, d.emptyBackingStore]), [[0, false], [0, false], [0, false]]);
  assert.equal(all[2]!.mirror, true); // the mirror's own <backingStore/> is not the disk's
  const some = domainDisks(withoutBackingStores(xml, new Set(['/v/vm.qcow2'])));
  assert.deepEqual(some.map((d) => [d.chain.length, d.emptyBackingStore]), [[0, false], [0, true], [0, true]]);
});

const AWKWARD = [
  '/var/virt/dir with space/disk 1.qcow2',
  '/var/virt/a,b/o,,c.qcow2',
  '/var/virt/100%/%41%s.qcow2',
  '/var/virt/dür/dïsk-ü.qcow2',
  "/var/virt/a&b'c/d<1>.qcow2",
  '/var/virt/$&/$1$2$`$\'.qcow2',
  '/var/virt/"quoted"/x.qcow2',
];

test('awkward paths: read, retargeted and restored exactly, escaped, non-ASCII kept as UTF-8', () => {
  for (const path of AWKWARD) {
    const xml = domain(STANDALONE.replace("'/v/vm.qcow2'", () => `'${esc(path)}'`)); // a function: no $& patterns
    assert.equal(domainDisks(xml)[0]!.source, path);
    const overlay = `${path}.overlay-$&-$1`;
    const out = retargetDisks(xml, new Map([[path, overlay]]));
    assert.equal(domainDisks(out)[0]!.source, overlay, path);
    const back = withOriginalDisks(out, new Map([[overlay, path]]));
    assert.equal(domainDisks(back)[0]!.source, path, path);
    assert.doesNotMatch(out, /&#/); // UTF-8, not character references
  }
  const out = retargetDisks(domain(STANDALONE), new Map([['/v/vm.qcow2', `/v/dür/a&b'c"d<1>`]]));
  assert.match(out, /<source file="\/v\/dür\/a&amp;b'c&quot;d&lt;1&gt;"\/>/);
});

test('serialization: comments, order and the rest kept; quotes become "; the trailing newline stays', () => {
  const xml = `<domain type='kvm' id='7'>
  <!-- written by hand -->
  <name>vm-1</name>
  <description>a &lt;b&gt; &amp; 'c'</description>
  <devices>
    <!-- disks -->
${LINKED_SAVED}
  </devices>
</domain>
`;
  const out = retargetDisks(xml, MOVE);
  assert.equal(
    out,
    `<domain type="kvm" id="7">
  <!-- written by hand -->
  <name>vm-1</name>
  <description>a &lt;b&gt; &amp; 'c'</description>
  <devices>
    <!-- disks -->
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2"/>
      <source file="/v/vm.qcow2.overlay-X"/>
      <target dev="vda" bus="virtio"/>
    </disk>
  </devices>
</domain>
`,
  );
});

test('not a domain, or not well-formed: DomainXmlError', () => {
  assert.throws(() => domainDisks('<domain><devices></domain>'), /not well-formed \(fatalError: Opening and ending tag mismatch/);
  for (const bad of ['', 'junk', '<domain><devices></domain>', "<domain><name>&foo;</name></domain>", "<domain a=1/>", '<network/>']) {
    assert.throws(() => domainDisks(bad), DomainXmlError, JSON.stringify(bad));
    assert.throws(() => retargetDisks(bad, MOVE), DomainXmlError, JSON.stringify(bad));
  }
});

const UEFI = `<domain type='qemu'>
  <name>uefi-1</name>
  <uuid>0e7a9c2e-5c47-4f0a-a3a5-9a8e7e6f3c21</uuid>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/uefi-1_VARS.fd</nvram>
  </os>
  <devices>
    <tpm model='tpm-crb'>
      <backend type='emulator' version='2.0'/>
    </tpm>
  </devices>
</domain>`;

test('domainInfo: UEFI loader with NVRAM template, TPM emulator', () => {
  assert.deepEqual(domainInfo(UEFI), {
    name: 'uefi-1',
    uuid: '0e7a9c2e-5c47-4f0a-a3a5-9a8e7e6f3c21',
    type: 'qemu',
    firmware: {
      loader: { path: '/usr/share/OVMF/OVMF_CODE_4M.fd', type: 'pflash', readonly: true },
      nvram: { path: '/var/lib/libvirt/qemu/nvram/uefi-1_VARS.fd', template: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
    },
    tpms: [{ model: 'tpm-crb', backendType: 'emulator', version: '2.0' }],
  });
});

test("domainInfo: BIOS, <os firmware='efi'>, NVRAM without template and as <source file>", () => {
  assert.deepEqual(domainInfo(domain(STANDALONE)), {
    name: 'vm-1',
    uuid: '6c3e2a4e-0f55-4c1e-9d1c-2b7a1d8f0a11',
    type: 'kvm',
    firmware: {},
    tpms: [],
  });
  const efi = `<domain type='kvm'><name>e</name><os firmware='efi'><type>hvm</type></os><devices/></domain>`;
  assert.deepEqual(domainInfo(efi).firmware, { kind: 'efi' });
  const plain = `<domain type='kvm'><name>e</name><os firmware='efi'><loader readonly='yes' type='pflash'>/c.fd</loader><nvram>/n/e_VARS.fd</nvram></os></domain>`;
  assert.deepEqual(domainInfo(plain).firmware, { kind: 'efi', loader: { path: '/c.fd', type: 'pflash', readonly: true }, nvram: { path: '/n/e_VARS.fd' } });
  const source = `<domain type='kvm'><name>e</name><os><nvram type='file' template='/t.fd'><source file='/n/dür &amp; x_VARS.fd'/></nvram></os></domain>`;
  assert.deepEqual(domainInfo(source).firmware, { nvram: { path: '/n/dür & x_VARS.fd', template: '/t.fd' } });
  const passthrough = `<domain type='kvm'><name>p</name><devices><tpm><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm></devices></domain>`;
  assert.deepEqual(domainInfo(passthrough).tpms, [{ backendType: 'passthrough' }]);
});
