/**
 * What a schedule hands its run: the group of VMs backed up at one time, with the order the
 * sequence attributes ask for. Shared by the scheduler (client) and the scheduled run (workflow). Pure.
 */
export interface ScheduledGroupInput {
  /** The group's key (also the schedule's ID below the prefix). */
  group: string;
  pool?: string;
  /** Every VM the run backs up, by name. */
  members: string[];
  /** Members named in sstVirtualizationVirtualMachineSequenceStop/-Start, in that order. */
  stopOrder: string[];
  startOrder: string[];
  /** The site's nodes: a VM that moved to another node meanwhile is skipped at run time. */
  nodes: string[];
}
