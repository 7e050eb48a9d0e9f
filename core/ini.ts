/**
 * The INI dialect of the original's configuration files: `[Section]`, `KEY = value`,
 * `#` or `;` comments on their own line. Values keep inner spaces; no quoting, no escapes,
 * because the original's Config::IniFiles reads them that way (SEARCH_FILTER contains `=` and `%`).
 */
export type IniSections = Record<string, Record<string, string>>;

export class IniSyntaxError extends Error {
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(`line ${line}: ${detail}`);
    this.name = 'IniSyntaxError';
  }
}

export function parseIni(text: string): IniSections {
  const sections: IniSections = {};
  let current: Record<string, string> | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const lineNo = index + 1;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1]!.trim();
      current = sections[name] ??= {};
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new IniSyntaxError(lineNo, `expected "KEY = value" or "[Section]", got "${line}"`);
    if (!current) throw new IniSyntaxError(lineNo, 'a key before the first [Section]');
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) throw new IniSyntaxError(lineNo, `invalid key "${key}"`);
    current[key] = line.slice(eq + 1).trim();
  });
  return sections;
}
