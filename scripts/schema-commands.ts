/**
 * The `schema` and `drift` commands of the CLI (scripts/migrate.ts parses the arguments and
 * prints through the functions it passes in). Loaded only when one of them is asked for.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { EXIT, MigrateError } from '../runner/errors.ts';

export interface CommandIo {
  json: boolean;
  say(text: string): void;
  emitJson(value: unknown): void;
  /** Text as it is, no newline added (a schema file). */
  write(text: string): void;
}

export interface SchemaArgs {
  url: string;
  /** --url was given: read that database instead of building the folder. */
  live: boolean;
  dir: string;
  table: string;
  write: boolean;
}

export async function runSchema(args: SchemaArgs, io: CommandIo): Promise<number> {
  const { liveSchema, schemaOf } = await import('../runner/schema-command.ts');
  if (args.live) {
    if (args.write)
      throw new MigrateError('BAD_TARGET', 'schema --write writes what the folder builds; drop --url to use it.');
    const text = await liveSchema({ url: args.url, table: args.table });
    io.emitJson({ ok: true, command: 'schema', schema: text });
    if (!io.json) io.write(text);
    return EXIT.ok;
  }
  const schemas = await schemaOf({ dir: args.dir, table: args.table, url: args.url });
  io.emitJson({ ok: true, command: 'schema', schemas });
  for (const s of schemas) {
    if (s.builtOn !== undefined) note(`schema: ${s.dialect} built on the ${s.builtOn}: no postgres:// URL was given`);
    if (args.write) {
      mkdirSync(dirname(s.file), { recursive: true });
      writeFileSync(s.file, s.text);
      io.say(`wrote ${s.file}`);
    } else {
      if (schemas.length > 1) io.say(`-- ${s.file}`);
      io.write(s.text);
    }
  }
  return EXIT.ok;
}

export interface DriftArgs extends Omit<SchemaArgs, 'live' | 'write'> {
  /** --scratch-url: where PostgreSQL's scratch is made instead of the live server. */
  scratchUrl?: string;
}

export async function runDrift(args: DriftArgs, io: CommandIo): Promise<number> {
  const { drift } = await import('../runner/drift.ts');
  const result = await drift({ url: args.url, dir: args.dir, table: args.table, scratchUrl: args.scratchUrl });
  if (result.note !== undefined) note(`drift: ${result.note}`);
  io.emitJson({ command: 'drift', ...result });
  for (const item of result.items) io.say(item.message);
  io.say(
    result.ok
      ? `drift: none; the database matches its ${result.revisions.length} applied revision(s)`
      : `drift: ${result.items.length} difference(s) from its ${result.revisions.length} applied revision(s)`,
  );
  return result.ok ? EXIT.ok : EXIT.migrationFailed;
}

/** A note about how the result was made: stderr, so that stdout stays the schema or the JSON. */
function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
