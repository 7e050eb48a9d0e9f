/**
 * A failure of the way to the hypervisor itself, not of the command sent over it ([Service]
 * TRANSPORTAPI = CLISSH: the SSH gateway, docs/configuration.md). Its message starts with
 * core/gateway.ts gatewayMessage(), which core/failures.ts reads to give it its documented code and
 * retry (docs/exit-codes.md, "The SSH gateway").
 */
import { gatewayMessage, type GatewayProblem } from '../../core/gateway.js';

export class TransportError extends Error {
  constructor(
    readonly problem: GatewayProblem,
    /** `user@host:port` */
    readonly gateway: string,
    /** What ssh said (its last lines). */
    readonly detail: string,
  ) {
    super(gatewayMessage(gateway, problem, detail));
    this.name = 'TransportError';
  }
}

export function isTransportError(e: unknown): e is TransportError {
  return e instanceof TransportError;
}
