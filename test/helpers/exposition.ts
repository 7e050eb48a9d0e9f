/** Reading a Prometheus text exposition in tests: its families (from the TYPE lines) and the sample names they serve. */

/** Family name → type, from the `# TYPE` lines; a family declared twice throws (Prometheus would reject the scrape). */
export function familiesOf(text: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('# TYPE ')) continue;
    const [, , name, type] = line.split(' ');
    if (families.has(name!)) throw new Error(`metric family ${name} is declared twice`);
    families.set(name!, type!);
  }
  return families;
}

/** The sample names a family serves: a histogram's _bucket, _sum and _count, a summary's value, _sum and _count, else its name. */
export function sampleNamesOf(families: Map<string, string>): Set<string> {
  const names = new Set<string>();
  for (const [name, type] of families) {
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
    else names.add(name);
  }
  return names;
}
