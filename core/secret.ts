/**
 * A secret (the LDAP bind password, the mail password, a Temporal API key or client key) that cannot
 * leak by accident: JSON, string conversion and util.inspect all print a placeholder. Only
 * `reveal()` gives the value, at the one place that uses it (the bind, the SMTP login, the connection).
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

/**
 * A password setting as the INI gives it (docs/configuration.md, "Secrets"), first match wins:
 * the environment variable `envVar` (non-empty); a file (`<key>_FILE = /path`, or `<key> = file:/path`;
 * one trailing newline dropped); the value inline (as the original daemon's files have it).
 * Undefined when none is set. `unreadable` is thrown (with the message) when the file cannot be read.
 */
export function secretSetting(o: {
  env: Record<string, string | undefined>;
  envVar: string;
  values: Record<string, string>;
  section: string;
  key: string;
  readSecretFile: (path: string) => string;
  unreadable: (message: string) => Error;
}): Secret | undefined {
  const fromEnv = o.env[o.envVar];
  if (fromEnv !== undefined && fromEnv !== '') return new Secret(fromEnv, `environment ${o.envVar}`);
  const inline = o.values[o.key];
  const file = o.values[`${o.key}_FILE`] || (inline?.startsWith('file:') ? inline.slice(5) : undefined);
  if (file) {
    let text: string;
    try {
      text = o.readSecretFile(file);
    } catch (e) {
      throw o.unreadable(`cannot read the [${o.section}] ${o.key} file ${file}: ${(e as Error).message}`);
    }
    return new Secret(text.replace(/\r?\n$/, ''), `file ${file}`);
  }
  return inline !== undefined && inline !== '' ? new Secret(inline, 'configuration file') : undefined;
}
