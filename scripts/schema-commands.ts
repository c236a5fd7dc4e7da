/**
 * The `schema` and `drift` commands of the CLI (scripts/migrate.ts parses the arguments and
 * prints through the functions it passes in). Loaded only when one of them is asked for.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { EXIT, MigrateError } from '../runner/core/errors.ts';
import type { ServerRole } from '../runner/core/hosts.ts';

export interface CommandIo {
  json: boolean;
  say(text: string): void;
  emitJson(value: unknown): void;
  /** Text as it is, no newline added (a schema file). */
  write(text: string): void;
  /** Aborted by Ctrl-C: the build stops after its current step and removes its scratch. */
  signal?: AbortSignal;
  /** Told which server the live database is on (a hot standby is said). */
  onServer?: (role: ServerRole) => void;
}

export interface SchemaArgs {
  url: string;
  /** --url was given: read that database instead of building the folder. */
  live: boolean;
  dir: string;
  table: string;
  write: boolean;
  /** --scratch-url: the server where PostgreSQL's build makes a scratch database (else the embedded PostgreSQL). */
  scratchUrl?: string | undefined;
}

export async function runSchema(args: SchemaArgs, io: CommandIo): Promise<number> {
  const { liveSchema, schemaOf } = await import('../runner/catalog/schema-command.ts');
  if (args.live) {
    if (args.write)
      throw new MigrateError(
        'BAD_TARGET',
        "schema --write writes what the folder builds, and --url names a live database to read: drop --url (PostgreSQL's build then runs on the embedded PostgreSQL), or name a server to build on in a scratch database with --scratch-url.",
      );
    if (args.scratchUrl !== undefined)
      throw new MigrateError('BAD_OPTION', 'schema --url reads that database and builds nothing; drop --scratch-url.');
    const text = await liveSchema(
      { url: args.url, table: args.table, ...(io.onServer ? { onServer: io.onServer } : {}) },
      { signal: io.signal },
    );
    io.emitJson({ ok: true, command: 'schema', schema: text });
    if (!io.json) io.write(text);
    return EXIT.ok;
  }
  // The folder is never built in the database DATABASE_URL names: that URL only picks the
  // dialect of a folder of bare .sql files (#24).
  const { dir, table, url, scratchUrl } = args;
  const config = { dir, table, url, ...(scratchUrl === undefined ? {} : { scratchUrl }) };
  const schemas = await schemaOf(config, { signal: io.signal });
  io.emitJson({ ok: true, command: 'schema', schemas });
  for (const s of schemas) {
    if (s.swept !== undefined)
      note(
        `schema: dropped ${s.swept.length} scratch database(s) of this role left by an interrupted run (over an hour old and unused): ${s.swept.join(', ')}`,
      );
    if (s.builtOn !== undefined) note(`schema: ${s.dialect} built on the ${s.builtOn}: no --scratch-url was given`);
    if (args.write) {
      writeSchemaFile(s.file, s.text);
      io.say(`wrote ${s.file}`);
    } else {
      if (schemas.length > 1) io.say(`-- ${s.file}`);
      io.write(s.text);
    }
  }
  return EXIT.ok;
}

export type DriftArgs = Omit<SchemaArgs, 'live' | 'write'>;

export async function runDrift(args: DriftArgs, io: CommandIo): Promise<number> {
  const { drift } = await import('../runner/catalog/drift.ts');
  const { url, dir, table, scratchUrl } = args;
  const result = await drift(
    {
      url,
      dir,
      table,
      ...(scratchUrl === undefined ? {} : { scratchUrl }),
      ...(io.onServer ? { onServer: io.onServer } : {}),
    },
    { signal: io.signal },
  );
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

/** A schema file written, or WRITE_FAILED naming it and why (a full disk says which file it was writing). */
function writeSchemaFile(file: string, text: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  } catch (error) {
    const why = (error as Error).message.split(', ')[0];
    throw MigrateError.at('WRITE_FAILED', { file }, `the schema file cannot be written (${why}).`, error);
  }
}

/** A note about how the result was made: stderr, so that stdout stays the schema or the JSON. */
function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
