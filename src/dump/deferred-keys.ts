/**
 * Secondary indexes built after the rows are in (as myloader --innodb-optimize-keys and
 * mysqlpump --defer-table-indexes do): InnoDB then builds each index once, sorted, instead of
 * inserting every row into it at a random place while loading.
 *
 * Conservative on purpose, because the restored DDL must equal the dumped one: only plain
 * `KEY`/`INDEX` lines of an InnoDB table are deferred (never PRIMARY, UNIQUE, FULLTEXT, SPATIAL or
 * VECTOR), and nothing is deferred for a table with foreign keys (InnoDB would create an index of
 * its own for them) or for a key holding the AUTO_INCREMENT column (the table needs it to exist).
 * Non-unique keys come after the unique ones in SHOW CREATE TABLE however they were added, so
 * adding them back in their order gives the same definition.
 */
export interface DeferredKeys {
  /** the CREATE TABLE without the deferred keys */
  readonly create: string;
  /** `ADD KEY ...` clauses, in their original order (empty: nothing deferred) */
  readonly adds: string[];
}

const PLAIN_KEY = /^\s*(?:KEY|INDEX)\s+`/i;

export function deferSecondaryKeys(create: string, engine: string | null): DeferredKeys {
  const none = { create, adds: [] };
  if ((engine ?? '').toLowerCase() !== 'innodb') return none;
  if (/\bFOREIGN KEY\b/i.test(create) || /^\s*CONSTRAINT\s/im.test(create)) return none;
  const lines = create.split('\n');
  const autoIncrementColumn = lines.map((l) => /^\s*`((?:[^`]|``)+)`\s.*\bAUTO_INCREMENT\b/i.exec(l)?.[1]).find((c) => c !== undefined);
  const keep: string[] = [];
  const adds: string[] = [];
  for (const line of lines) {
    const body = line.trim().replace(/,$/, '');
    if (PLAIN_KEY.test(line) && !(autoIncrementColumn && body.includes(`\`${autoIncrementColumn}\``))) adds.push(`ADD ${body}`);
    else keep.push(line);
  }
  if (adds.length === 0) return none;
  // the column and key lines end in a comma except the last one before the closing parenthesis
  const close = keep.findIndex((l) => /^\)/.test(l));
  if (close < 1) return none;
  keep[close - 1] = (keep[close - 1] as string).replace(/,\s*$/, '');
  return { create: keep.join('\n'), adds };
}
