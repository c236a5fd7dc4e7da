/**
 * `tsx bench/schema-drift.ts`: times `schema` (the folder's canonical schema, built on a scratch
 * database), `schema --url` (a live read) and `drift` on the project's own sql/ (the bot's
 * schema), in this process, several runs each; prints the median and the range of each phase.
 *
 * Environment: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres; a
 * bench_schema_<pid> database is created there and dropped), BENCH_RUNS (default 5).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { drift } from '../runner/drift.ts';
import { migrate } from '../runner/migrator.ts';
import { liveSchema, schemaOf } from '../runner/schema-command.ts';
import { ADMIN_URL } from './db.ts';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'sql');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

async function time(label: string, fn: () => Promise<unknown>): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await fn();
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)] as number;
  console.log(
    `${label.padEnd(34)} median ${median.toFixed(0).padStart(5)} ms  (${ms[0]?.toFixed(0)}–${ms.at(-1)?.toFixed(0)} ms, ${RUNS} runs)`,
  );
}

async function main(): Promise<void> {
  const name = `bench_schema_${process.pid}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    await migrate({ url: url.toString(), dir: DIR }, 'head');
    await time('schema (postgres, scratch database)', () => schemaOf({ dir: DIR, url: ADMIN_URL }));
    await time('schema (sqlite, scratch file)', () => schemaOf({ dir: DIR }));
    await time('schema --url (postgres, live read)', () => liveSchema({ url: url.toString() }));
    await time('drift (postgres)', () => drift({ url: url.toString(), dir: DIR }));
  } finally {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end({ timeout: 5 });
  }
}

void main();
