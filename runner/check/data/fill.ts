/**
 * Filling a scratch database's tables with generated rows (generate.ts), parents before
 * children, through the connection the driver lends to introspection.
 *
 * @module
 */
import type { SchemaSource } from '../../core/driver.ts';
import type { Dialect } from '../../core/files.ts';
import { quoteIdent, sqlString } from '../../core/quote.ts';
import type { Schema, Table } from '../../catalog/schema.ts';
import { fkKey, generateRows, Rng, type ParentKeys, type Rows } from './generate.ts';

/** Reads and writes on the scratch database, whatever the dialect: values come back as text (or null). */
export interface DataDb {
  dialect: Dialect;
  all(sql: string): Promise<Array<Record<string, unknown>>>;
  /** Run one statement; how many rows it changed. */
  run(sql: string): Promise<number>;
  /** Run one statement inside an open transaction; a failure undoes that statement only. */
  attempt(sql: string): Promise<number>;
}

export function dataDb(source: SchemaSource): DataDb {
  if ('db' in source) {
    const db = source.db;
    return {
      dialect: 'sqlite',
      all: async (sql) => db.prepare(sql).all() as Array<Record<string, unknown>>,
      run: async (sql) => db.prepare(sql).run().changes,
      // SQLite undoes the failed statement alone and keeps the transaction.
      attempt: async (sql) => db.prepare(sql).run().changes,
    };
  }
  const run = async (sql: string) => ((await source.query(sql)) as unknown as { count?: number }).count ?? 0;
  return {
    dialect: 'postgres',
    all: (sql) => source.query(sql),
    run,
    // A failed statement aborts a PostgreSQL transaction: a savepoint keeps the rest.
    attempt: async (sql) => {
      await source.query('SAVEPOINT migrate_fill');
      try {
        const n = await run(sql);
        await source.query('RELEASE SAVEPOINT migrate_fill');
        return n;
      } catch (error) {
        await source.query('ROLLBACK TO SAVEPOINT migrate_fill');
        throw error;
      }
    },
  };
}

/** `"name"`, or `"schema"."name"` for PostgreSQL's qualified names. */
export function ident(name: string, dialect: Dialect): string {
  const dot = name.indexOf('.');
  return dialect === 'postgres' && dot > 0
    ? `${quoteIdent(name.slice(0, dot))}.${quoteIdent(name.slice(dot + 1))}`
    : quoteIdent(name);
}

/** Parents before children; a cycle is broken where it closes (its nullable keys then stay NULL). */
export function parentsFirst(tables: readonly Table[]): Table[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const out: Table[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (t: Table) => {
    if (state.has(t.name)) return;
    state.set(t.name, 'visiting');
    for (const f of t.foreignKeys) {
      const parent = byName.get(f.refTable);
      if (parent && parent !== t) visit(parent);
    }
    state.set(t.name, 'done');
    out.push(t);
  };
  for (const t of tables) visit(t);
  return out;
}

export interface Filled {
  table: string;
  /** Rows the generator made, and how many the database took. */
  wanted: number;
  inserted: number;
  /** The database's reason for the first row it refused. */
  refused?: string;
}

/**
 * Add `rows` generated rows to each of `tables` (names in `schema`). A row that breaks a rule the
 * generator does not read (a CHECK it cannot parse, a trigger) is dropped, not reported: the
 * pass then checks the rows that exist.
 */
export async function fillTables(
  db: DataDb,
  schema: Schema,
  tables: ReadonlySet<string>,
  rows: number,
  seed: number,
): Promise<Filled[]> {
  const rng = new Rng(seed);
  const out: Filled[] = [];
  // One transaction: a commit per statement would cost more than the rows themselves.
  await db.run('BEGIN');
  try {
    await fillInOrder(db, schema, tables, rows, rng, out);
    await db.run('COMMIT');
  } catch (error) {
    await db.run('ROLLBACK');
    throw error;
  }
  return out;
}

async function fillInOrder(
  db: DataDb,
  schema: Schema,
  tables: ReadonlySet<string>,
  rows: number,
  rng: Rng,
  out: Filled[],
): Promise<void> {
  for (const t of parentsFirst(schema.tables)) {
    if (!tables.has(t.name)) continue;
    const selfRef = t.foreignKeys.some((f) => f.refTable === t.name);
    // A table that references itself is filled in two halves: the second points at the first.
    const halves = selfRef ? [Math.ceil(rows / 2), Math.floor(rows / 2)] : [rows];
    const filled: Filled = { table: t.name, wanted: 0, inserted: 0 };
    let start = 0;
    for (const count of halves) {
      const parents = await parentKeys(db, schema, t);
      const groups = generateRows(t, db.dialect, count, rng, parents, start);
      start += count;
      for (const g of groups) await insert(db, t, g, filled);
    }
    out.push(filled);
  }
}

const PARENT_KEYS_LIMIT = 5000;

/** The keys of `t`'s foreign keys' parent rows, as literals: what a generated child row points at. */
export async function parentKeys(db: DataDb, schema: Schema, t: Table): Promise<ParentKeys> {
  const out: ParentKeys = new Map();
  for (const f of t.foreignKeys) {
    const key = fkKey(f.refTable, f.refColumns);
    if (out.has(key) || !schema.tables.some((p) => p.name === f.refTable)) continue;
    const cols = f.refColumns.map((c) => selectText(c, db.dialect));
    const rows = await db.all(
      `SELECT DISTINCT ${cols.map((c, i) => `${c} AS k${i}`).join(', ')} FROM ${ident(f.refTable, db.dialect)} WHERE ${f.refColumns.map((c) => `${ident(c, db.dialect)} IS NOT NULL`).join(' AND ')} LIMIT ${PARENT_KEYS_LIMIT}`,
    );
    out.set(
      key,
      rows.map((r) => f.refColumns.map((_, i) => literal(r[`k${i}`]))),
    );
  }
  return out;
}

/** A column read back as the text the comparison and the literals need. */
export function selectText(column: string, dialect: Dialect): string {
  return dialect === 'postgres' ? `${ident(column, dialect)}::text` : ident(column, dialect);
}

/** A value read back, as a literal to write again. */
export function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return `X'${value.toString('hex')}'`;
  return sqlString(String(value));
}

const CHUNK = 100;

async function insert(db: DataDb, t: Table, g: Rows, filled: Filled): Promise<void> {
  const head =
    g.columns.length === 0
      ? null
      : `INSERT INTO ${ident(t.name, db.dialect)} (${g.columns.map((c) => ident(c, db.dialect)).join(', ')}) VALUES `;
  filled.wanted += g.rows.length;
  // Without a column to set (every one generated or defaulted), one row per statement.
  const size = head === null ? 1 : CHUNK;
  for (let i = 0; i < g.rows.length; i += size) {
    const chunk = g.rows.slice(i, i + size);
    try {
      filled.inserted += await db.attempt(statement(head, chunk, db.dialect, t));
    } catch {
      // Row by row, so that one refused row does not cost the others.
      for (const row of chunk) {
        try {
          filled.inserted += await db.attempt(statement(head, [row], db.dialect, t));
        } catch (error) {
          filled.refused ??= (error as Error).message;
        }
      }
    }
  }
}

function statement(head: string | null, rows: string[][], dialect: Dialect, t: Table): string {
  // Rows that repeat a key already in the table (a row the migrations inserted) are skipped.
  if (head === null) return `INSERT INTO ${ident(t.name, dialect)} DEFAULT VALUES`;
  return `${head}${rows.map((r) => `(${r.join(', ')})`).join(', ')} ON CONFLICT DO NOTHING`;
}

export async function count(db: DataDb, t: Table): Promise<number> {
  const [r] = await db.all(`SELECT count(*) AS n FROM ${ident(t.name, db.dialect)}`);
  return Number(r?.n ?? 0);
}
