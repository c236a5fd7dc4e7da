/** check's SCHEMA_STALE: the committed schema files against what the folder builds. */
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_DIR, DEFAULT_TABLE } from '../core/config.ts';
import { displayPath } from '../core/files.ts';
import { renderCatalog } from '../catalog/render.ts';
import {
  type BuildOptions,
  buildCatalog,
  dialectsOf,
  type SchemaConfig,
  schemaFile,
  scratchServer,
} from '../catalog/schema-command.ts';
import type { Finding } from './lint.ts';

/**
 * SCHEMA_STALE for each committed `<dir>/schema/<dialect>.sql` that differs from what the
 * folder builds. No file, no finding; a PostgreSQL file is built in a scratch database on the
 * `scratchUrl` server (check's --url), else on the embedded PostgreSQL; never in the database
 * a URL names (#24).
 */
export async function staleSchemaFindings(config: SchemaConfig, options: BuildOptions = {}): Promise<Finding[]> {
  const dir = config.dir ?? DEFAULT_DIR;
  const server = scratchServer(config.scratchUrl);
  const findings: Finding[] = [];
  for (const dialect of dialectsOf(dir, config.url)) {
    const file = schemaFile(dir, dialect);
    if (!existsSync(file)) continue;
    let built: string;
    try {
      const { catalog } = await buildCatalog(dialect, server, dir, config.table ?? DEFAULT_TABLE, options);
      built = renderCatalog(catalog);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      continue; // the migrations themselves fail: check reports that on its own
    }
    const committed = readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
    if (committed === built) continue;
    const shown = displayPath(file);
    findings.push({
      severity: 'error',
      code: 'SCHEMA_STALE',
      file: shown,
      message: `${shown} is not the schema the migrations build. Run \`schema --write\` and commit the result.\n${unifiedDiff(committed, built, shown)}`,
    });
  }
  return findings;
}

/**
 * A unified diff of two texts (the committed file, then what the folder builds), three lines
 * of context, at most `limit` lines of output.
 */
export function unifiedDiff(before: string, after: string, name: string, limit = 40): string {
  const a = before.split('\n');
  const b = after.split('\n');
  // Longest common subsequence, from the end: schema files are a few hundred lines.
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    const row = lcs[i] as number[];
    const next = lcs[i + 1] as number[];
    for (let j = b.length - 1; j >= 0; j--)
      row[j] = a[i] === b[j] ? (next[j + 1] as number) + 1 : Math.max(next[j] as number, row[j + 1] as number);
  }
  const ops: Array<{ op: ' ' | '-' | '+'; text: string; ai: number; bi: number }> = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) ops.push({ op: ' ', text: a[i++] as string, ai: i, bi: ++j });
    else if (j < b.length && (i === a.length || (lcs[i + 1]?.[j] ?? 0) < (lcs[i]?.[j + 1] ?? 0)))
      ops.push({ op: '+', text: b[j++] as string, ai: i, bi: j });
    else ops.push({ op: '-', text: a[i++] as string, ai: i, bi: j });
  }
  const lines = [`--- ${name} (committed)`, `+++ ${name} (built from the migrations)`];
  const changed = ops.flatMap((o, n) => (o.op === ' ' ? [] : [n]));
  let c = 0;
  while (c < changed.length) {
    // One hunk while the next change is within six unchanged lines of the last.
    let last = changed[c] as number;
    const firstChange = last;
    while (c + 1 < changed.length && (changed[c + 1] as number) - last <= 7) last = changed[++c] as number;
    c++;
    const hunk = ops.slice(Math.max(0, firstChange - 3), Math.min(ops.length, last + 4));
    const aFrom = hunk.find((o) => o.op !== '+')?.ai ?? 0;
    const bFrom = hunk.find((o) => o.op !== '-')?.bi ?? 0;
    const aCount = hunk.filter((o) => o.op !== '+').length;
    const bCount = hunk.filter((o) => o.op !== '-').length;
    lines.push(`@@ -${aFrom},${aCount} +${bFrom},${bCount} @@`);
    for (const o of hunk) lines.push(`${o.op}${o.text}`);
  }
  if (lines.length > limit) return [...lines.slice(0, limit), `… ${lines.length - limit} more lines`].join('\n');
  return lines.join('\n');
}
