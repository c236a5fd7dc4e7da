/**
 * `tsx bench/schema-drift.ts`: times `schema` (the folder's canonical schema, built on each kind
 * of scratch), `schema --url` (a live read) and `drift` (each place its scratch can be) on the
 * project's own sql/ (the bot's schema), in this process, several runs each; prints the median
 * and the range of each. Then the CLI as a user runs it (`node --import tsx scripts/migrate.ts`),
 * start-up included (and the compiled one, dist/migrate.cjs, when `npm run build` made it), and
 * the bare cost of creating and dropping a scratch database each way.
 *
 * Environment: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres; a
 * bench_schema_<pid> database and a SELECT-only role are created there and dropped),
 * BENCH_RUNS (default 5), BENCH_LOAD=1 (meanwhile, two sessions create, fill and drop
 * databases in a loop, as test suites running beside it do).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { parseUrl } from '../runner/core/config.ts';
import { drift } from '../runner/catalog/drift.ts';
import { migrate } from '../runner/core/migrator.ts';
import { buildCatalog, liveSchema, schemaOf } from '../runner/catalog/schema-command.ts';
import { ADMIN_URL, pgUrl } from './db.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(ROOT, 'sql');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

async function time(label: string, fn: () => Promise<unknown>, runs = RUNS): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)] as number;
  console.log(
    `${label.padEnd(52)} median ${median.toFixed(0).padStart(5)} ms  (${ms[0]?.toFixed(0)}–${ms.at(-1)?.toFixed(0)} ms, ${runs} runs)`,
  );
}

const COMPILED = join(ROOT, 'dist', 'migrate.cjs');

/** The CLI as a user runs it: a fresh node, and tsx's transform (or `npm run build`'s bundle), then the command. */
function cli(args: string[], env: Record<string, string> = {}, compiled = false): () => Promise<void> {
  const entry = compiled ? [COMPILED] : ['--import', 'tsx', 'scripts/migrate.ts'];
  return async () => {
    const r = spawnSync(process.execPath, [...entry, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      encoding: 'utf8',
    });
    if (r.status !== 0 && r.status !== 1) throw new Error(`${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  };
}

/** Two sessions creating, filling and dropping databases until stopped: other test suites. */
function backgroundLoad(): () => Promise<void> {
  let stop = false;
  const loops = [0, 1].map(async (k) => {
    const sql = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
    for (let i = 0; !stop; i++) {
      const name = `bench_load_${process.pid}_${k}_${i}`;
      await sql.unsafe(`CREATE DATABASE ${name}`);
      const db = postgres(pgUrl(name), { max: 1, onnotice: () => {} });
      await db.unsafe(
        'CREATE TABLE t (a int, b text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g',
      );
      await db.end({ timeout: 5 });
      await sql.unsafe(`DROP DATABASE ${name} WITH (FORCE)`);
    }
    await sql.end({ timeout: 5 });
  });
  return async () => {
    stop = true;
    await Promise.all(loops);
  };
}

async function main(): Promise<void> {
  const name = `bench_schema_${process.pid}`;
  const reader = `bench_reader_${process.pid}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = pgUrl(name);
  const readerUrl = new URL(url);
  readerUrl.username = reader;
  const stopLoad = process.env.BENCH_LOAD === '1' ? backgroundLoad() : undefined;
  if (stopLoad) console.log('(with BENCH_LOAD=1: two sessions creating, filling and dropping databases meanwhile)');
  try {
    await migrate({ url, dir: DIR }, 'head');
    const db = postgres(url, { max: 1, onnotice: () => {} });
    await db.unsafe(`CREATE ROLE ${reader} LOGIN; GRANT CONNECT ON DATABASE ${name} TO ${reader};
      GRANT USAGE ON SCHEMA public TO ${reader}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${reader}`);
    await db.end({ timeout: 5 });
    const admin15 = parseUrl(ADMIN_URL);
    const table = 'schema_migrations';
    await time('schema --scratch-url: scratch database', () => schemaOf({ dir: DIR, scratchUrl: ADMIN_URL }));
    await time('schema, postgres: scratch database', () => buildCatalog('postgres', admin15, DIR, table));
    await time(
      'schema, postgres: embedded PGlite (the default)',
      () => buildCatalog('postgres', undefined, DIR, table),
      3,
    );
    await time('schema, sqlite: scratch file', () => buildCatalog('sqlite', undefined, DIR, table));
    await time('schema --url (postgres, live read)', () => liveSchema({ url }));
    await time('drift: embedded PGlite (the default)', () => drift({ url, dir: DIR }), 3);
    await time('drift --scratch-url (scratch database there)', () => drift({ url, dir: DIR, scratchUrl: ADMIN_URL }));
    await time('drift, SELECT-only role (embedded PGlite)', () => drift({ url: readerUrl.toString(), dir: DIR }), 3);
    const env = { DATABASE_URL: ADMIN_URL };
    await time('CLI: schema (both dialects, postgres embedded)', cli(['schema'], env));
    await time('CLI: schema --scratch-url', cli(['schema', '--scratch-url', ADMIN_URL]));
    await time('CLI: schema --url (live read)', cli(['schema', '--url', url]));
    await time('CLI: drift (embedded PGlite)', cli(['drift', '--url', url]));
    await time('CLI: drift --scratch-url', cli(['drift', '--url', url, '--scratch-url', ADMIN_URL]));
    if (existsSync(COMPILED)) {
      await time('compiled CLI: schema', cli(['schema'], env, true));
      await time('compiled CLI: drift', cli(['drift', '--url', url], {}, true));
      await time(
        'compiled CLI: drift --scratch-url',
        cli(['drift', '--url', url, '--scratch-url', ADMIN_URL], {}, true),
      );
    } else console.log('(no dist/migrate.cjs: `npm run build` first to time the compiled CLI)');
    for (const how of ['TEMPLATE template0', 'TEMPLATE template0 STRATEGY FILE_COPY', 'TEMPLATE template1']) {
      await time(`CREATE + DROP DATABASE ${how}`, async () => {
        await admin.unsafe(`CREATE DATABASE ${name}_x ${how}`);
        await admin.unsafe(`DROP DATABASE ${name}_x WITH (FORCE)`);
      });
    }
  } finally {
    await stopLoad?.();
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.unsafe(`DROP ROLE IF EXISTS ${reader}`);
    await admin.end({ timeout: 5 });
  }
}

void main();
