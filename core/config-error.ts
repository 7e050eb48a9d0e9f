/** A configuration that cannot be used, with the exit code that says why (2 missing, 36, 39 invalid). */
export class ConfigError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}
