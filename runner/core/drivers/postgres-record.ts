/**
 * The PostgreSQL record table as the driver's one session sees it: the schema it lives in (fixed
 * at first use), the lock key that follows from it, and its state and rows, read once per lock,
 * the first read riding in the lock's own round trip. Every query goes through the driver's
 * session (`Run`), so a lost connection reads the same here as anywhere in the driver.
 */
import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import { type RecordRow, type RecordTableState, recordTableState, toRecordRow } from '../record.ts';
import { parseTableName } from '../config.ts';
import type { SchemaSource } from '../driver.ts';
import { catalog, COLUMNS, missingRight } from './postgres-sql.ts';
import { quoteIdent } from '../quote.ts';

/** The driver's session: every query through it, a connection failure made readable. */
export type Run = <T>(fn: (sql: postgres.Sql) => Promise<T>) => Promise<T>;

/** Queries sent behind the lock; undefined where they failed or were not sent. */
export interface ReadAhead {
  state: Promise<RecordTableState | undefined>;
  rows: Promise<RecordRow[] | undefined>;
}

export class RecordTable {
  /** The record table's name as given (`schema_migrations`, `ops.migrations`), for messages. */
  readonly label: string;
  /** The schema the name gives, if any. */
  readonly schema: string | undefined;
  readonly name: string;
  readonly #run: Run;
  /** The schema an unqualified record table lives in, resolved once per driver. */
  #resolvedSchema: string | undefined;
  /** The record table existed when last pinged: worth reading it in the lock's round trip. */
  #seen = false;
  /** Between `locked` and `unlocked`: nobody else creates or alters the table meanwhile. */
  #locked = false;
  /** The record table's state, as read under the current lock. */
  #state: RecordTableState | undefined;
  /** The right a run lacks, read by the same query as the record table's state. */
  #missing: string | undefined;
  #keys: Buffer | undefined;
  /** The record table's state and rows, sent right behind the lock that was taken; consumed once. */
  #ahead: ReadAhead | undefined;

  constructor(table: string, run: Run) {
    const { schema, table: name } = parseTableName(table, true);
    this.label = table;
    this.schema = schema;
    this.name = name;
    this.#run = run;
  }

  /** What ping's row told: the schema an unqualified name resolves to, and whether the table is there. */
  pinged(row: Record<string, unknown> | undefined): void {
    if (this.#resolvedSchema === undefined && typeof row?.s === 'string') this.#resolvedSchema = row.s;
    this.#seen = row?.seen === true;
  }

  /** The lock was taken, with `ahead` queued behind it: state and rows are read once under it. */
  locked(ahead: ReadAhead | undefined): void {
    this.#locked = true;
    this.#ahead = ahead;
    this.#state = undefined;
  }

  unlocked(): void {
    this.#locked = false;
    this.#ahead = undefined;
    this.#state = undefined;
  }

  /**
   * One lock per record table, so two tables in one database never block each other. An
   * unqualified name is resolved to the schema it is created in, so `t` and `public.t` agree.
   */
  async lockKey(): Promise<string> {
    return (await this.#digest()).readBigInt64BE(0).toString();
  }

  /**
   * The key of each step's own exclusion, a transaction lock (catalog.expect): another key than
   * the run's session lock, so a runner without that lock (behind a pooler) waits for one step
   * of a runner that has it, not for its whole run.
   */
  async stepKey(): Promise<string> {
    return (await this.#digest()).readBigInt64BE(8).toString();
  }

  /** Both keys' source, once: the schema is fixed at first use, and every step asks. */
  async #digest(): Promise<Buffer> {
    this.#keys ??= createHash('sha256')
      .update(`sql-migrate\0${await this.schemaName()}\0${this.name}`)
      .digest();
    return this.#keys;
  }

  /**
   * The schema of the record table: the one named, else the one an unqualified CREATE TABLE
   * would use (`current_schema()`), fixed at first use. Every statement on the record table is
   * then qualified with it, so a migration that runs `SET search_path` cannot send the record
   * somewhere else halfway through a run.
   */
  async schemaName(): Promise<string> {
    if (this.schema !== undefined) return this.schema;
    if (this.#resolvedSchema === undefined) {
      const [row] = await this.#run((sql) => sql.unsafe(catalog.currentSchema));
      if (typeof row?.s !== 'string') {
        throw new Error(
          `no schema on the search_path exists to hold the record table ${this.label}: create one, or name it with --table schema.table`,
        );
      }
      this.#resolvedSchema = row.s;
    }
    return this.#resolvedSchema;
  }

  /** The table's name as every statement must spell it: schema-qualified, quoted. */
  async qualified(): Promise<string> {
    return `${quoteIdent(await this.schemaName())}.${quoteIdent(this.name)}`;
  }

  /**
   * The record table's state and rows, queued right behind a try for the lock on the same
   * session. Each is its own statement with its own snapshot, taken after the lock statement
   * finished, so when the lock was taken they read what a read under the lock would. When it was
   * not, they are dropped. Rows are asked for only when the table was there at ping: a fresh
   * database then gets no "relation does not exist" in its server log. Any failure here just
   * means the ordinary queries run later.
   */
  readAhead(): ReadAhead {
    const state = this.#queryState().catch(() => undefined);
    const rows = this.#seen ? this.#queryRows().catch(() => undefined) : Promise.resolve(undefined);
    return { state, rows };
  }

  async state(): Promise<RecordTableState> {
    // Under the lock nobody else creates or alters the table: asked once per lock, not per call.
    if (this.#locked && this.#state) return this.#state;
    const state = (this.#locked ? await this.#ahead?.state : undefined) ?? (await this.#queryState());
    if (this.#locked) this.#state = state;
    return state;
  }

  async #queryState(): Promise<RecordTableState> {
    const schema = await this.schemaName();
    const rows = await this.#run((sql) => sql.unsafe(catalog.columns(schema, this.name)));
    this.#missing = missingRight(rows[0], schema, this.name);
    return recordTableState(rows.filter((r) => r.name !== null).map((r) => String(r.name)));
  }

  /** Read with the record table's state (the lock's round trip): costs no query of its own. */
  async missingRight(): Promise<string | undefined> {
    await this.state();
    return this.#missing;
  }

  /**
   * Creates only what is missing: `CREATE … IF NOT EXISTS` checks the CREATE privilege before
   * it checks existence, so a role that may use an existing schema and table but not create
   * them would fail on it. https://www.postgresql.org/docs/current/sql-createschema.html
   */
  async ensure(): Promise<void> {
    if ((await this.state()).kind !== 'missing') return;
    const table = await this.qualified();
    const key = await this.stepKey();
    await this.#run(async (sql) => {
      if (this.schema !== undefined) {
        const [row] =
          await sql`SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ${this.schema}) AS found`;
        if (row?.found !== true)
          await sql.unsafe(catalog.createRecord(key, `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`));
      }
      await sql.unsafe(catalog.createRecord(key, `CREATE TABLE IF NOT EXISTS ${table} (${COLUMNS})`));
    });
    this.#state = { kind: 'ok' };
  }

  async rows(): Promise<RecordRow[]> {
    if ((await this.state()).kind !== 'ok') return [];
    const ahead = this.#locked ? this.#ahead?.rows : undefined;
    if (this.#ahead) this.#ahead.rows = Promise.resolve(undefined); // read ahead once: later reads see later steps
    return (await ahead) ?? (await this.#queryRows());
  }

  async #queryRows(): Promise<RecordRow[]> {
    const table = await this.qualified();
    const rows = await this.#run((sql) => sql.unsafe(catalog.readRecord(table)));
    return rows.map(toRecordRow);
  }

  /** What `check`'s introspection reads through: this session, and where the record table lives. */
  async schemaSource(): Promise<SchemaSource> {
    return {
      query: (text, params = []) => this.#run((sql) => sql.unsafe(text, params as postgres.ParameterOrJSON<never>[])),
      // postgres.js prepares it again where a pooler dropped it (FetchPreparedStatement).
      repeated: (text, params = []) =>
        this.#run((sql) => sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true })),
      schema: await this.schemaName(),
      table: this.name,
    };
  }
}
