/**
 * Known byte patterns written into a running guest's disk at known moments, and checked from the
 * host afterwards: the backup must hold exactly what was on disk at the snapshot, the live image
 * everything ever written.
 */
import assert from 'node:assert/strict';
import { guestWrite, hostHasPattern } from '../../stack/tiny-vm.js';
import type { World } from './world.js';

export interface Write {
  label: string;
  target: string;
  pattern: number;
  offset: string;
  length: string;
}

export class GuestData {
  readonly writes: Write[] = [];
  constructor(private readonly world: World) {}

  async write(label: string, pattern: number, offset: string, length = '1M', target = 'vda'): Promise<Write> {
    await guestWrite(this.world.virsh, this.world.vm, target, pattern, offset, length);
    const w = { label, target, pattern, offset, length };
    this.writes.push(w);
    return w;
  }

  /** Asserts `image` holds exactly the writes listed in `present` and none of the others of that disk. */
  async assertImage(image: string, target: string, present: string[], what: string): Promise<void> {
    for (const w of this.writes.filter((x) => x.target === target)) {
      const has = await hostHasPattern(image, w.pattern, w.offset, w.length);
      const expected = present.includes(w.label);
      assert.equal(has, expected, `${what}: write "${w.label}" (0x${w.pattern.toString(16)} at ${w.offset}) ${expected ? 'missing' : 'present but must not be'}`);
    }
  }
}
