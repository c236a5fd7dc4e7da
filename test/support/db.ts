/**
 * A fresh real database per test, in either dialect, and plain queries to check its state
 * afterwards (never through the runner itself).
 */
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type TestDialect = 'sqlite' | 'postgres';
/** Both, unless TEST_DIALECTS narrows it (`TEST_DIALECTS=sqlite npm test` while working offline on one). */
export const TEST_DIALECTS: readonly TestDialect[] = (process.env.TEST_DIALECTS ?? 'sqlite,postgres')
  .split(',')
  .filter((d): d is TestDialect => d === 'sqlite' || d === 'postgres');

export interface RecordSnapshot {
  revision: string;
  name: string;
  status: string;
  seq: number;
  checksum: string;
}

export interface TestDb {
  dialect: TestDialect;
  url: string;
  /** A scratch directory that lives as long as the database (for copies of fixtures, .env files). */
  dir: string;
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** User tables, sorted. */
  tables(): Promise<string[]>;
  /** The record table's rows in order of application; [] when it does not exist. */
  records(table?: string): Promise<RecordSnapshot[]>;
  /** Every table, column, index and type as the catalog describes them, to compare two databases. */
  schema(): Promise<string[]>;
  drop(): Promise<void>;
}

export async function createTestDb(dialect: TestDialect): Promise<TestDb> {
  const dir = mkdtempSync(join(tmpdir(), `migrate-${dialect}-`));
  if (dialect === 'sqlite') {
    const path = join(dir, 'test.db');
    const query = async <T>(sql: string): Promise<T[]> => {
      if (!existsSync(path)) return [];
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare(sql).all() as T[];
      } finally {
        db.close();
      }
    };
    return finish({
      dialect,
      url: `sqlite:${path}`,
      dir,
      query,
      tables: async () =>
        (
          await query<{ name: string }>(
            `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
          )
        ).map((r) => r.name),
      schema: async () =>
        (
          await query<{ line: string }>(
            `SELECT type || ' ' || name || ': ' || coalesce(sql, '') AS line FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`,
          )
        ).map((r) => r.line.replace(/\s+/g, ' ')),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    });
  }
  const { createPostgresDatabase } = await import('./postgres.ts');
  const database = await createPostgresDatabase();
  const query = async <T>(text: string): Promise<T[]> => {
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      return (await sql.unsafe(text)) as unknown as T[];
    } finally {
      await sql.end({ timeout: 5 });
    }
  };
  return finish({
    dialect,
    url: database.url,
    dir,
    query,
    tables: async () =>
      (
        await query<{ name: string }>(
          `SELECT table_name AS name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE' ORDER BY 1`,
        )
      ).map((r) => r.name),
    schema: async () =>
      (
        await query<{ line: string }>(
          `SELECT 'column ' || c.oid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                   || CASE a.attidentity WHEN 'd' THEN ' IDENTITY BY DEFAULT' WHEN 'a' THEN ' IDENTITY ALWAYS' ELSE '' END || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') AS line
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
           UNION ALL
           SELECT 'index ' || schemaname || '.' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
           UNION ALL
           SELECT 'constraint ' || conrelid::regclass::text || '.' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
           UNION ALL
           SELECT 'type ' || t.typname || ': ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname
           ORDER BY 1`,
        )
      ).map((r) => r.line),
    drop: async () => {
      rmSync(dir, { recursive: true, force: true });
      await database.drop();
    },
  });
}

function finish(db: Omit<TestDb, 'records'>): TestDb {
  return {
    ...db,
    async records(table = 'schema_migrations') {
      if (!(await db.tables()).includes(table.split('.').pop() as string)) return [];
      const rows = await db.query<RecordSnapshot>(
        `SELECT revision, name, status, seq, checksum FROM ${table} ORDER BY seq`,
      );
      return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    },
  };
}

/** A fresh database for one test, dropped afterwards whatever happens. */
export async function withTestDb(dialect: TestDialect, fn: (db: TestDb) => Promise<void>): Promise<void> {
  const db = await createTestDb(dialect);
  try {
    await fn(db);
  } finally {
    await db.drop();
  }
}
