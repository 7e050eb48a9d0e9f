/** What a node worker can tell about its hypervisor: libvirt reachable, KVM usable, domains and their states. */
import type { Virsh } from '../../adapters/host/virsh.js';

export interface NodeProbe {
  node: string;
  libvirt: string;
  kvm: boolean;
  domains: Array<{ name: string; state: string }>;
}

export function createProbeActivities(deps: { virsh: Virsh; environment: string }) {
  return {
    async probeNode(): Promise<NodeProbe> {
      const version = await deps.virsh.exec(['version']);
      const libvirt = /Running hypervisor:\s*(.*)/.exec(version)?.[1]?.trim() ?? version.split('\n')[0] ?? '';
      let kvm = true;
      try {
        await deps.virsh.exec(['domcapabilities', '--virttype', 'kvm']);
      } catch {
        kvm = false;
      }
      const list = await deps.virsh.exec(['list', '--all', '--name']);
      const names = list.split('\n').map((l) => l.trim()).filter(Boolean);
      const domains = [];
      for (const name of names) domains.push({ name, state: (await deps.virsh.state(name)).state });
      return { node: deps.environment, libvirt, kvm, domains };
    },
  };
}
