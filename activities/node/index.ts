/**
 * The node worker's activities: everything that touches libvirt, QEMU images and local files on one
 * hypervisor. Built by a factory with its dependencies injected, so tests can hand in their own.
 */
import { createProbeActivities } from './probe.js';
import type { Virsh } from './virsh.js';

export interface NodeDeps {
  virsh: Virsh;
  /** This node's name ([Global] ENVIRONMENT). */
  environment: string;
}

export function createNodeActivities(deps: NodeDeps) {
  return {
    ...createProbeActivities(deps),
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
