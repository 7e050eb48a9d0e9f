/**
 * A secret (the LDAP bind password) that cannot leak by accident: JSON, string conversion and
 * util.inspect all print a placeholder. Only `reveal()` gives the value, at the one place that binds.
 */
const REDACTED = '***';

export class Secret {
  readonly #value: string;

  constructor(
    value: string,
    /** Where it came from, for `config show` and error messages: "environment KVM_BACKUP_LDAP_PASSWORD", "file /etc/…". */
    readonly origin: string,
  ) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  get isEmpty(): boolean {
    return this.#value.length === 0;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Secret(${REDACTED} from ${this.origin})`;
  }
}
