/**
 * The bot's initial schema (sql/<dialect>/20250128_140000_initial_schema.*.sql) against the
 * schema the bot's models describe (sql/README.md), once per dialect. Every check migrates a fresh
 * database with the CLI to that revision by name (later migrations in the folder do not change
 * what it must build), as a user does, and then reads the real database: PostgreSQL's catalogs, SQLite's
 * PRAGMAs, and plain INSERT/UPDATE/DELETE statements. Never the SQL files' text.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { maskDurations, ROOT, runCli } from './support/cli.ts';
import { TEST_DIALECTS, withTestDb, type TestDb, type TestDialect } from './support/db.ts';

const SQL_DIR = join(ROOT, 'sql');
const REVISION = '20250128_140000';

// ---------------------------------------------------------------------------------------------
// The spec, written once for both dialects
// ---------------------------------------------------------------------------------------------

const ENUMS = {
  userrole: ['FREE', 'VIP', 'ADMIN'],
  contentcategory: ['FREE_CONTENT', 'VIP_CONTENT', 'VIP_PREMIUM'],
  packagetype: ['STANDARD', 'BUNDLE', 'COLLECTION'],
  rolechangereason: [
    'ADMIN_GRANTED',
    'ADMIN_REVOKED',
    'VIP_PURCHASED',
    'VIP_REDEEMED',
    'VIP_EXPIRED',
    'VIP_EXTENDED',
    'VIP_ENTRY_COMPLETED',
    'MANUAL_CHANGE',
    'SYSTEM_AUTOMATIC',
  ],
} as const;
type EnumName = keyof typeof ENUMS;

/** The spec's logical types. `serial` is an int primary key the database generates. */
type Logical =
  | 'int'
  | 'bigint'
  | 'serial'
  | `string(${number})`
  | 'text'
  | 'bool'
  | 'datetime'
  | 'json'
  | 'numeric(10,2)'
  | 'float'
  | `enum ${EnumName}`;
/** Server defaults: the spec's "obvious ones" (timestamps now in UTC; active/is_active true, other booleans false). */
type DefaultKind = 'now' | 'true' | 'false';

interface Column {
  name: string;
  type: Logical;
  nullable: boolean;
  default?: DefaultKind;
}

function col(name: string, type: Logical, ...marks: ('null' | DefaultKind)[]): Column {
  const d = marks.find((m): m is DefaultKind => m !== 'null');
  return { name, type, nullable: marks.includes('null'), ...(d ? { default: d } : {}) };
}

interface Table {
  name: string;
  primaryKey: string;
  columns: Column[];
}

/** The tables of the initial schema, in their creation order. */
const TABLES: Table[] = [
  {
    name: 'bot_config',
    primaryKey: 'id',
    columns: [
      col('id', 'int'),
      col('vip_channel_id', 'string(50)', 'null'),
      col('free_channel_id', 'string(50)', 'null'),
      col('wait_time_minutes', 'int', 'null'),
      col('vip_reactions', 'json', 'null'),
      col('free_reactions', 'json', 'null'),
      col('subscription_fees', 'json', 'null'),
      col('created_at', 'datetime', 'null', 'now'),
      col('updated_at', 'datetime', 'null', 'now'),
      col('social_instagram', 'string(200)', 'null'),
      col('social_tiktok', 'string(200)', 'null'),
      col('social_x', 'string(200)', 'null'),
      col('free_channel_invite_link', 'string(500)', 'null'),
    ],
  },
  {
    name: 'users',
    primaryKey: 'user_id',
    columns: [
      col('user_id', 'bigint'),
      col('username', 'string(100)', 'null'),
      col('first_name', 'string(100)'),
      col('last_name', 'string(100)', 'null'),
      col('role', 'enum userrole'),
      col('created_at', 'datetime', 'now'),
      col('updated_at', 'datetime', 'now'),
    ],
  },
  {
    name: 'subscription_plans',
    primaryKey: 'id',
    columns: [
      col('id', 'serial'),
      col('name', 'string(100)'),
      col('duration_days', 'int'),
      col('price', 'float'),
      col('currency', 'string(10)'),
      col('active', 'bool', 'true'),
      col('created_at', 'datetime', 'now'),
      col('created_by', 'bigint'),
    ],
  },
  {
    name: 'content_packages',
    primaryKey: 'id',
    columns: [
      col('id', 'serial'),
      col('name', 'string(200)'),
      col('description', 'string(500)', 'null'),
      col('price', 'numeric(10,2)', 'null'),
      col('category', 'enum contentcategory'),
      col('type', 'enum packagetype'),
      col('media_url', 'string(500)', 'null'),
      col('is_active', 'bool', 'true'),
      col('created_at', 'datetime', 'now'),
      col('updated_at', 'datetime', 'now'),
    ],
  },
  {
    name: 'user_role_change_log',
    primaryKey: 'id',
    columns: [
      col('id', 'serial'),
      col('user_id', 'bigint'),
      col('previous_role', 'enum userrole', 'null'),
      col('new_role', 'enum userrole'),
      col('changed_by', 'bigint'),
      col('reason', 'enum rolechangereason'),
      col('change_source', 'string(50)'),
      col('change_metadata', 'json', 'null'),
      col('changed_at', 'datetime', 'now'),
    ],
  },
  {
    name: 'invitation_tokens',
    primaryKey: 'id',
    columns: [
      col('id', 'serial'),
      col('token', 'string(16)'),
      col('generated_by', 'bigint'),
      col('created_at', 'datetime', 'now'),
      col('duration_hours', 'int'),
      col('used', 'bool', 'false'),
      col('used_by', 'bigint', 'null'),
      col('used_at', 'datetime', 'null'),
      col('plan_id', 'int', 'null'),
    ],
  },
  {
    name: 'free_channel_requests',
    primaryKey: 'id',
    columns: [
      col('id', 'serial'),
      col('user_id', 'bigint'),
      col('request_date', 'datetime', 'now'),
      col('processed', 'bool', 'false'),
      col('processed_at', 'datetime', 'null'),
    ],
  },
  {
    name: 'user_interests',
    primaryKey: 'id',
    columns: [
      col('id', 'serial'),
      col('user_id', 'bigint'),
      col('package_id', 'int'),
      col('is_attended', 'bool', 'false'),
      col('attended_at', 'datetime', 'null'),
      col('created_at', 'datetime', 'now'),
    ],
  },
  {
    name: 'vip_subscribers',
    primaryKey: 'id',
    columns: [
      col('id', 'serial'),
      col('user_id', 'bigint'),
      col('join_date', 'datetime', 'now'),
      col('expiry_date', 'datetime'),
      col('status', 'string(20)'),
      col('vip_entry_stage', 'int', 'null'),
      col('vip_entry_token', 'string(64)', 'null'),
      col('invite_link_sent_at', 'datetime', 'null'),
      col('token_id', 'int'),
    ],
  },
];
const TABLE_NAMES = TABLES.map((t) => t.name);

/** table.column → table.column, ON DELETE. */
const FOREIGN_KEYS: [
  table: string,
  column: string,
  refTable: string,
  refColumn: string,
  onDelete: 'NO ACTION' | 'CASCADE',
][] = [
  ['free_channel_requests', 'user_id', 'users', 'user_id', 'NO ACTION'],
  ['invitation_tokens', 'plan_id', 'subscription_plans', 'id', 'NO ACTION'],
  ['user_interests', 'package_id', 'content_packages', 'id', 'CASCADE'],
  ['user_interests', 'user_id', 'users', 'user_id', 'CASCADE'],
  ['vip_subscribers', 'token_id', 'invitation_tokens', 'id', 'NO ACTION'],
  ['vip_subscribers', 'user_id', 'users', 'user_id', 'NO ACTION'],
];

/** Unique columns with no index named for them: UNIQUE constraints. */
const UNIQUE_CONSTRAINTS: [table: string, columns: string][] = [['vip_subscribers', 'vip_entry_token']];

/** The 24 named indexes: name, table, columns, unique. */
const INDEXES: [name: string, table: string, columns: string, unique: boolean][] = [
  ['idx_content_category_active', 'content_packages', 'category,is_active', false],
  ['idx_content_type_active', 'content_packages', 'type,is_active', false],
  ['idx_interest_user_package', 'user_interests', 'user_id,package_id', true],
  ['idx_interest_user_package_attended', 'user_interests', 'user_id,package_id,is_attended', false],
  ['idx_processed_date', 'free_channel_requests', 'processed,request_date', false],
  ['idx_role_log_changed_by_changed_at', 'user_role_change_log', 'changed_by,changed_at', false],
  ['idx_role_log_user_changed_at', 'user_role_change_log', 'user_id,changed_at', false],
  ['idx_status_expiry', 'vip_subscribers', 'status,expiry_date', false],
  ['idx_token_used_created', 'invitation_tokens', 'used,created_at', false],
  ['idx_user_date', 'free_channel_requests', 'user_id,request_date', false],
  ['idx_vip_entry_stage', 'vip_subscribers', 'vip_entry_stage', false],
  ['ix_content_packages_is_active', 'content_packages', 'is_active', false],
  ['ix_free_channel_requests_processed', 'free_channel_requests', 'processed', false],
  ['ix_free_channel_requests_user_id', 'free_channel_requests', 'user_id', false],
  ['ix_invitation_tokens_token', 'invitation_tokens', 'token', true],
  ['ix_invitation_tokens_used', 'invitation_tokens', 'used', false],
  ['ix_user_interests_is_attended', 'user_interests', 'is_attended', false],
  ['ix_user_interests_package_id', 'user_interests', 'package_id', false],
  ['ix_user_interests_user_id', 'user_interests', 'user_id', false],
  ['ix_user_role_change_log_changed_at', 'user_role_change_log', 'changed_at', false],
  ['ix_user_role_change_log_changed_by', 'user_role_change_log', 'changed_by', false],
  ['ix_user_role_change_log_user_id', 'user_role_change_log', 'user_id', false],
  ['ix_vip_subscribers_status', 'vip_subscribers', 'status', false],
  ['ix_vip_subscribers_user_id', 'vip_subscribers', 'user_id', true],
];

// Written as code points so that the variation selector of ❤️ (U+2764 U+FE0F) cannot go missing unseen.
const HEART = '\u2764\uFE0F';
const VIP_REACTIONS = [HEART, '\u{1F525}', '\u{1F60D}']; // ❤️ 🔥 😍
const FREE_REACTIONS = [HEART, '\u{1F44D}']; // ❤️ 👍

// ---------------------------------------------------------------------------------------------
// The per-dialect spelling of the spec, as each catalog reports it
// ---------------------------------------------------------------------------------------------

/** The type each dialect's catalog reports for a logical type (PostgreSQL: format_type; SQLite: the declared type). */
function catalogType(type: Logical, dialect: TestDialect): string {
  if (dialect === 'sqlite') {
    if (type === 'int' || type === 'bigint' || type === 'serial' || type === 'bool') return 'INTEGER';
    if (type === 'float') return 'REAL';
    if (type === 'numeric(10,2)') return 'NUMERIC';
    return 'TEXT'; // string(n), text, datetime, json, enums
  }
  if (type === 'int' || type === 'serial') return 'integer';
  if (type === 'bigint') return 'bigint';
  if (type === 'bool') return 'boolean';
  if (type === 'datetime') return 'timestamp without time zone';
  if (type === 'json') return 'jsonb';
  if (type === 'float') return 'double precision';
  if (type === 'numeric(10,2)') return 'numeric(10,2)';
  if (type === 'text') return 'text';
  if (type.startsWith('string(')) return `character varying${type.slice('string'.length)}`;
  return type.slice('enum '.length);
}

/** A default as each catalog reports it (pg_get_expr / pragma_table_info.dflt_value). */
function catalogDefault(kind: DefaultKind, dialect: TestDialect): string {
  if (kind === 'now')
    return dialect === 'postgres' ? "(now() AT TIME ZONE 'utc'::text)" : "strftime('%Y-%m-%d %H:%M:%f000', 'now')";
  if (dialect === 'postgres') return kind;
  return kind === 'true' ? '1' : '0';
}

/** One line per column: `name type NULL|NOT NULL [DEFAULT x] [GENERATED]`; GENERATED is an identity (PG) or the rowid (SQLite). */
function columnLine(c: Column, dialect: TestDialect): string {
  return [
    c.name,
    catalogType(c.type, dialect),
    c.nullable ? 'NULL' : 'NOT NULL',
    ...(c.default ? [`DEFAULT ${catalogDefault(c.default, dialect)}`] : []),
    ...(c.type === 'serial' ? ['GENERATED'] : []),
  ].join(' ');
}

// ---------------------------------------------------------------------------------------------
// Reading the catalogs
// ---------------------------------------------------------------------------------------------

interface Catalog {
  columns: Record<string, string[]>;
  primaryKeys: string[];
  foreignKeys: string[];
  uniqueConstraints: string[];
  /** Named indexes (not the ones behind a primary key or UNIQUE constraint). */
  indexes: string[];
}

const fkLine = (
  table: string,
  column: string,
  refTable: string,
  refColumn: string,
  onDelete: string,
  onUpdate: string,
) => `${table}(${column}) -> ${refTable}(${refColumn}) ON DELETE ${onDelete} ON UPDATE ${onUpdate}`;
const indexLine = (name: string, table: string, columns: string, unique: boolean, partial: boolean) =>
  `${name}: ${table}(${columns})${unique ? ' UNIQUE' : ''}${partial ? ' PARTIAL' : ''}`;

async function readCatalog(db: TestDb): Promise<Catalog> {
  return db.dialect === 'sqlite' ? readSqliteCatalog(db) : readPostgresCatalog(db);
}

async function readSqliteCatalog(db: TestDb): Promise<Catalog> {
  const catalog: Catalog = { columns: {}, primaryKeys: [], foreignKeys: [], uniqueConstraints: [], indexes: [] };
  const withoutRowid = new Map(
    (
      await db.query<{ name: string; wr: number }>(
        `SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table'`,
      )
    ).map((r) => [r.name, r.wr === 1]),
  );
  for (const table of TABLE_NAMES) {
    const cols = await db.query<{
      cid: number;
      name: string;
      type: string;
      notnull: number;
      dflt_value: string | null;
      pk: number;
    }>(`SELECT * FROM pragma_table_info('${table}') ORDER BY cid`);
    const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
    // An INTEGER PRIMARY KEY of a rowid table is the rowid: SQLite generates it.
    const rowidAlias =
      withoutRowid.get(table) === false && pk.length === 1 && pk[0]?.type.toUpperCase() === 'INTEGER'
        ? pk[0].name
        : undefined;
    catalog.columns[table] = cols.map((c) =>
      [
        c.name,
        c.type,
        c.notnull ? 'NOT NULL' : 'NULL',
        ...(c.dflt_value !== null ? [`DEFAULT ${c.dflt_value}`] : []),
        ...(c.name === rowidAlias ? ['GENERATED'] : []),
      ].join(' '),
    );
    catalog.primaryKeys.push(`${table}: (${pk.map((c) => c.name).join(',')})`);
    for (const fk of await db.query<{
      id: number;
      seq: number;
      table: string;
      from: string;
      to: string;
      on_update: string;
      on_delete: string;
    }>(`SELECT * FROM pragma_foreign_key_list('${table}') ORDER BY id, seq`)) {
      catalog.foreignKeys.push(fkLine(table, fk.from, fk.table, fk.to, fk.on_delete, fk.on_update));
    }
    for (const ix of await db.query<{ name: string; unique: number; origin: string; partial: number }>(
      `SELECT * FROM pragma_index_list('${table}')`,
    )) {
      const columns = (
        await db.query<{ name: string | null }>(`SELECT name FROM pragma_index_info('${ix.name}') ORDER BY seqno`)
      )
        .map((c) => c.name ?? '<expr>')
        .join(',');
      if (ix.origin === 'u') catalog.uniqueConstraints.push(`${table}(${columns})`);
      else if (ix.origin === 'c')
        catalog.indexes.push(indexLine(ix.name, table, columns, ix.unique === 1, ix.partial === 1));
      // origin 'pk': the primary key of a WITHOUT ROWID table (sqlite_autoindex_*), checked as a primary key.
    }
  }
  catalog.primaryKeys.sort();
  catalog.foreignKeys.sort();
  catalog.uniqueConstraints.sort();
  catalog.indexes.sort();
  return catalog;
}

const PG_COLUMNS = `
  SELECT c.relname AS table, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
         a.attidentity AS identity, pg_get_expr(d.adbin, d.adrelid) AS dflt
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
   ORDER BY c.relname, a.attnum`;

/** Every constraint of the schema's tables but NOT NULL (which PostgreSQL 18 lists here too). */
const PG_CONSTRAINTS = `
  SELECT k.conname AS name, k.contype AS type, t.relname AS table, r.relname AS ref_table,
         (SELECT string_agg(a.attname, ',' ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum) AS columns,
         (SELECT string_agg(a.attname, ',' ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum) AS ref_columns,
         CASE k.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END AS on_delete,
         CASE k.confupdtype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END AS on_update
    FROM pg_constraint k
    JOIN pg_class t ON t.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    LEFT JOIN pg_class r ON r.oid = k.confrelid
   WHERE n.nspname = current_schema() AND k.contype <> 'n' AND t.relname <> 'schema_migrations'
   ORDER BY k.conname`;

/** Indexes that do not back a primary key, UNIQUE or exclusion constraint. */
const PG_INDEXES = `
  SELECT i.relname AS name, t.relname AS table, x.indisunique AS unique, x.indpred IS NOT NULL AS partial, am.amname AS method,
         (SELECT string_agg(coalesce(a.attname, '<expr>'), ',' ORDER BY u.ord) FROM unnest(x.indkey) WITH ORDINALITY u(attnum, ord)
            LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.attnum) AS columns
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_am am ON am.oid = i.relam
   WHERE n.nspname = current_schema() AND t.relname <> 'schema_migrations'
     AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = x.indrelid AND k.conindid = x.indexrelid AND k.contype IN ('p', 'u', 'x'))
   ORDER BY i.relname`;

async function readPostgresCatalog(db: TestDb): Promise<Catalog> {
  const catalog: Catalog = { columns: {}, primaryKeys: [], foreignKeys: [], uniqueConstraints: [], indexes: [] };
  for (const c of await db.query<{
    table: string;
    name: string;
    type: string;
    notnull: boolean;
    identity: string;
    dflt: string | null;
  }>(PG_COLUMNS)) {
    if (c.table === 'schema_migrations') continue;
    (catalog.columns[c.table] ??= []).push(
      [
        c.name,
        c.type,
        c.notnull ? 'NOT NULL' : 'NULL',
        ...(c.dflt !== null ? [`DEFAULT ${c.dflt}`] : []),
        // GENERATED BY DEFAULT AS IDENTITY is 'd'; ALWAYS ('a') would refuse a copy of rows with their ids.
        ...(c.identity === 'd' ? ['GENERATED'] : c.identity === 'a' ? ['GENERATED ALWAYS'] : []),
      ].join(' '),
    );
  }
  const other: string[] = [];
  for (const k of await db.query<{
    name: string;
    type: string;
    table: string;
    ref_table: string | null;
    columns: string;
    ref_columns: string | null;
    on_delete: string | null;
    on_update: string | null;
  }>(PG_CONSTRAINTS)) {
    if (k.type === 'p') catalog.primaryKeys.push(`${k.table}: ${k.name} (${k.columns})`);
    else if (k.type === 'f')
      catalog.foreignKeys.push(
        `${k.name}: ${fkLine(k.table, k.columns, k.ref_table ?? '?', k.ref_columns ?? '?', k.on_delete ?? '?', k.on_update ?? '?')}`,
      );
    else if (k.type === 'u') catalog.uniqueConstraints.push(`${k.name}: ${k.table}(${k.columns})`);
    else other.push(`${k.name} (${k.type}) on ${k.table}`);
  }
  assert.deepEqual(other, [], 'no CHECK, exclusion or trigger constraints on PostgreSQL');
  for (const ix of await db.query<{
    name: string;
    table: string;
    unique: boolean;
    partial: boolean;
    method: string;
    columns: string;
  }>(PG_INDEXES)) {
    catalog.indexes.push(
      indexLine(ix.name, ix.table, ix.columns, ix.unique, ix.partial) +
        (ix.method === 'btree' ? '' : ` USING ${ix.method}`),
    );
  }
  catalog.primaryKeys.sort();
  catalog.foreignKeys.sort();
  catalog.uniqueConstraints.sort();
  catalog.indexes.sort();
  return catalog;
}

// ---------------------------------------------------------------------------------------------
// Writing, as a DBA does: our own connection (the `query` helper is read-only on SQLite)
// ---------------------------------------------------------------------------------------------

type Row = Record<string, unknown>;

interface Writer {
  run(sql: string): Promise<Row[]>;
  close(): Promise<void>;
}

async function openWriter(db: TestDb): Promise<Writer> {
  if (db.dialect === 'sqlite') {
    const conn = new Database(db.url.slice('sqlite:'.length));
    conn.pragma('foreign_keys = ON');
    return {
      run: async (text) => {
        const st = conn.prepare(text);
        if (st.reader) return st.all() as Row[];
        st.run();
        return [];
      },
      close: async () => void conn.close(),
    };
  }
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  return {
    run: async (text) => [...(await sql.unsafe(text))] as Row[],
    close: () => sql.end({ timeout: 5 }),
  };
}

/** SQLSTATE (postgres.js) or extended result code (better-sqlite3) of each refusal. */
const REFUSAL = {
  invalid: { postgres: '22P02', sqlite: 'SQLITE_CONSTRAINT_CHECK' }, // invalid_text_representation (enum label, boolean, json)
  tooLong: { postgres: '22001', sqlite: 'SQLITE_CONSTRAINT_CHECK' }, // string_data_right_truncation
  notNull: { postgres: '23502', sqlite: 'SQLITE_CONSTRAINT_NOTNULL' },
  foreignKey: { postgres: '23503', sqlite: 'SQLITE_CONSTRAINT_FOREIGNKEY' },
  unique: { postgres: '23505', sqlite: 'SQLITE_CONSTRAINT_UNIQUE' },
} as const;

async function assertRefused(
  w: Writer,
  dialect: TestDialect,
  sql: string,
  refusal: keyof typeof REFUSAL,
): Promise<void> {
  const expected = REFUSAL[refusal][dialect];
  await assert.rejects(
    () => w.run(sql),
    (e: { code?: string; message?: string }) => {
      assert.equal(e.code, expected, `${sql}\n  refused with ${e.code}: ${e.message}`);
      return true;
    },
    `${sql}\n  should be refused (${refusal})`,
  );
}

async function assertAccepted(w: Writer, sql: string): Promise<void> {
  try {
    await w.run(sql);
  } catch (e) {
    assert.fail(`${sql}\n  was refused: ${(e as Error).message}`);
  }
}

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
const truthy = (v: unknown) => v === true || v === 1;

/** A naive UTC timestamp as text (PG `::text` trims trailing zeros; SQLite keeps its own six digits). */
function assertNowUtc(value: unknown, dialect: TestDialect, what: string, slackMs = 120_000): void {
  assert.equal(typeof value, 'string', `${what}: ${String(value)}`);
  const text = value as string;
  assert.match(
    text,
    dialect === 'sqlite' ? /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/ : /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$/,
    what,
  );
  const ms = Date.parse(`${text.replace(' ', 'T').replace(/(\.\d{3})\d*$/, '$1')}Z`);
  assert.ok(
    Math.abs(ms - Date.now()) < slackMs,
    `${what} = ${text} is not now in UTC (now: ${new Date().toISOString()})`,
  );
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

async function migrate(db: TestDb, target: string): Promise<string> {
  const r = await runCli([target, '--url', db.url, '--dir', SQL_DIR]);
  assert.equal(r.code, 0, `${target}: ${r.stderr}`);
  return maskDurations(r.stdout);
}

const UP_OUTPUT = `up    ${REVISION}  initial_schema  (N ms)\nat ${REVISION} (initial_schema)\n`;
const DOWN_OUTPUT = `down  ${REVISION}  initial_schema  (N ms)\nat base\n`;

for (const dialect of TEST_DIALECTS) {
  describe(`initial schema on ${dialect}`, () => {
    it('the initial revision creates the nine tables, each column with its type, nullability and default', () =>
      withTestDb(dialect, async (db) => {
        assert.equal(await migrate(db, REVISION), UP_OUTPUT);
        assert.deepEqual(await db.tables(), [...TABLE_NAMES, 'schema_migrations'].sort());
        assert.deepEqual(
          (await db.records()).map((r) => [r.revision, r.name, r.status]),
          [[REVISION, 'initial_schema', 'applied']],
        );
        const catalog = await readCatalog(db);
        assert.deepEqual(Object.keys(catalog.columns).sort(), [...TABLE_NAMES].sort());
        for (const table of TABLES) {
          assert.deepEqual(
            catalog.columns[table.name],
            table.columns.map((c) => columnLine(c, dialect)),
            `columns of ${table.name}`,
          );
        }
        if (dialect === 'sqlite') {
          // Given keys (bot_config.id, users.user_id) must not become a rowid that SQLite fills in.
          const wr = await db.query<{ name: string; wr: number }>(
            `SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
          );
          assert.deepEqual(
            wr.filter((t) => t.wr === 1).map((t) => t.name),
            ['bot_config', 'users'],
          );
        }
      }));

    it('the initial revision creates each primary key, foreign key (target, ON DELETE), unique constraint and the 24 named indexes', () =>
      withTestDb(dialect, async (db) => {
        await migrate(db, REVISION);
        const catalog = await readCatalog(db);
        const pg = dialect === 'postgres';
        assert.deepEqual(
          catalog.primaryKeys,
          TABLES.map((t) =>
            pg ? `${t.name}: ${t.name}_pkey (${t.primaryKey})` : `${t.name}: (${t.primaryKey})`,
          ).sort(),
        );
        assert.deepEqual(
          catalog.foreignKeys,
          FOREIGN_KEYS.map(
            ([t, c, rt, rc, del]) => (pg ? `${t}_${c}_fkey: ` : '') + fkLine(t, c, rt, rc, del, 'NO ACTION'),
          ).sort(),
        );
        assert.deepEqual(
          catalog.uniqueConstraints,
          UNIQUE_CONSTRAINTS.map(([t, c]) => (pg ? `${t}_${c}_key: ` : '') + `${t}(${c})`),
        );
        assert.equal(catalog.indexes.length, 24);
        assert.deepEqual(
          catalog.indexes,
          INDEXES.map(([name, table, columns, unique]) => indexLine(name, table, columns, unique, false)),
        );
        // The models' exact duplicate of idx_vip_entry_stage is created once, not twice.
        assert.ok(!catalog.indexes.some((l) => l.startsWith('ix_vip_subscribers_vip_entry_stage:')));
        if (pg) {
          // pg_indexes agrees, and has exactly one index per constraint besides: 9 primary keys + 1 unique.
          const all = await db.query<{ indexname: string }>(
            `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> 'schema_migrations' ORDER BY indexname`,
          );
          assert.deepEqual(
            all.map((r) => r.indexname),
            [
              ...INDEXES.map(([n]) => n),
              ...TABLE_NAMES.map((t) => `${t}_pkey`),
              'vip_subscribers_vip_entry_token_key',
            ].sort(),
          );
        }
      }));

    it('enums: PostgreSQL types list their labels in order; every label is accepted and role = ROOT is refused on both', () =>
      withTestDb(dialect, async (db) => {
        await migrate(db, REVISION);
        if (dialect === 'postgres') {
          const types = await db.query<{ typname: string; labels: string }>(
            `SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) AS labels
               FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE n.nspname = current_schema() GROUP BY t.typname ORDER BY t.typname`,
          );
          assert.deepEqual(
            types.map((t) => [t.typname, t.labels]),
            Object.entries(ENUMS)
              .map(([name, labels]) => [name, labels.join(',')])
              .sort(([a], [b]) => (a as string).localeCompare(b as string)),
          );
        }
        const w = await openWriter(db);
        try {
          await assertRefused(
            w,
            dialect,
            `INSERT INTO users (user_id, first_name, role) VALUES (42, 'Eve', 'ROOT')`,
            'invalid',
          );
          await assertRefused(
            w,
            dialect,
            `INSERT INTO users (user_id, first_name, role) VALUES (42, 'Eve', 'vip')`,
            'invalid',
          ); // labels are upper case
          assert.deepEqual(await w.run(`SELECT user_id FROM users`), []);
          for (const [i, role] of ENUMS.userrole.entries()) {
            await assertAccepted(
              w,
              `INSERT INTO users (user_id, first_name, role) VALUES (${100 + i}, 'U', ${lit(role)})`,
            );
          }
          assert.deepEqual(
            (await w.run(`SELECT role FROM users ORDER BY user_id`)).map((r) => r.role),
            [...ENUMS.userrole],
          );
        } finally {
          await w.close();
        }
      }));

    it('the initial revision inserts the one default bot_config row', () =>
      withTestDb(dialect, async (db) => {
        await migrate(db, REVISION);
        const rows = await db.query<Row>(
          `SELECT ${TABLES[0]!.columns.map((c) => `CAST(${c.name} AS TEXT) AS ${c.name}`).join(', ')} FROM bot_config`,
        );
        assert.equal(rows.length, 1);
        const row = rows[0]!;
        assert.equal(row.id, '1');
        assert.equal(row.wait_time_minutes, '60');
        assert.deepEqual(JSON.parse(row.vip_reactions as string), VIP_REACTIONS);
        assert.deepEqual(JSON.parse(row.free_reactions as string), FREE_REACTIONS);
        assert.deepEqual(JSON.parse(row.subscription_fees as string), {});
        assertNowUtc(row.created_at, dialect, 'bot_config.created_at', 300_000);
        assert.equal(row.updated_at, row.created_at);
        for (const c of [
          'vip_channel_id',
          'free_channel_id',
          'social_instagram',
          'social_tiktok',
          'social_x',
          'free_channel_invite_link',
        ]) {
          assert.equal(row[c], null, `bot_config.${c}`);
        }
      }));

    it('each column refuses what its type forbids: string length, boolean, enum label, JSON, NULL', () =>
      withTestDb(dialect, async (db) => {
        await migrate(db, REVISION);
        const w = await openWriter(db);
        try {
          // One row in every table, written with defaults left out.
          for (const text of [
            `INSERT INTO users (user_id, first_name, role) VALUES (5000000001, 'Ana', 'VIP')`,
            `INSERT INTO subscription_plans (name, duration_days, price, currency, created_by) VALUES ('Monthly', 30, 9.99, 'USD', 1)`,
            `INSERT INTO content_packages (name, category, type) VALUES ('Pack', 'VIP_CONTENT', 'BUNDLE')`,
            `INSERT INTO user_role_change_log (user_id, new_role, changed_by, reason, change_source) VALUES (5000000001, 'VIP', 1, 'VIP_PURCHASED', 'test')`,
            `INSERT INTO invitation_tokens (token, generated_by, duration_hours) VALUES ('T1', 1, 24)`,
            `INSERT INTO free_channel_requests (user_id) VALUES (5000000001)`,
            `INSERT INTO user_interests (user_id, package_id) VALUES (5000000001, 1)`,
            `INSERT INTO vip_subscribers (user_id, expiry_date, status, token_id) VALUES (5000000001, '2025-03-01 00:00:00', 'active', 1)`,
          ]) {
            await assertAccepted(w, text);
          }
          let checked = 0;
          for (const table of TABLES) {
            for (const c of table.columns) {
              const set = (value: string) => `UPDATE ${table.name} SET ${c.name} = ${value}`;
              const length = /^string\((\d+)\)$/.exec(c.type)?.[1];
              if (length !== undefined) {
                const n = Number(length);
                await assertAccepted(w, set(lit('\u00e9'.repeat(n)))); // n characters (2n bytes): the limit counts characters
                await assertRefused(w, dialect, set(lit('x'.repeat(n + 1))), 'tooLong');
                checked++;
              } else if (c.type === 'bool') {
                await assertAccepted(w, set('false'));
                await assertRefused(w, dialect, set(`'2'`), 'invalid');
                await assertAccepted(w, set('true'));
                checked++;
              } else if (c.type.startsWith('enum ')) {
                const labels = ENUMS[c.type.slice('enum '.length) as EnumName];
                for (const label of labels) await assertAccepted(w, set(lit(label)));
                await assertRefused(w, dialect, set(`'ROOT'`), 'invalid');
                await assertRefused(w, dialect, set(lit(labels[0].toLowerCase())), 'invalid');
                checked++;
              } else if (c.type === 'json') {
                await assertAccepted(w, set(`'{"a": [1, "x"]}'`));
                await assertRefused(w, dialect, set(`'{not json'`), 'invalid');
                checked++;
              }
              if (c.name === table.primaryKey) continue;
              if (c.nullable) await assertAccepted(w, set('NULL'));
              else await assertRefused(w, dialect, set('NULL'), 'notNull');
            }
          }
          assert.equal(checked, 33, 'string, boolean, enum and JSON columns checked');
        } finally {
          await w.close();
        }
      }));

    it("a DBA's plain INSERTs leave defaults out; deleting a user cascades to user_interests and is refused while a subscriber refers to it", () =>
      withTestDb(dialect, async (db) => {
        await migrate(db, REVISION);
        const w = await openWriter(db);
        try {
          // The session's time zone must not leak into the "now, UTC" defaults (UTC+14 here).
          if (dialect === 'postgres') await w.run(`SET TIME ZONE 'Pacific/Kiritimati'`);
          await assertAccepted(w, `INSERT INTO users (user_id, first_name, role) VALUES (5000000001, 'Ana', 'VIP')`); // > 2^32: a Telegram id
          await assertAccepted(w, `INSERT INTO users (user_id, first_name, role) VALUES (5000000002, 'Bo', 'FREE')`);
          await assertAccepted(
            w,
            `INSERT INTO subscription_plans (name, duration_days, price, currency, created_by) VALUES ('Monthly', 30, 9.99, 'USD', 5000000001)`,
          );
          await assertAccepted(
            w,
            `INSERT INTO invitation_tokens (token, generated_by, duration_hours, plan_id) VALUES ('ABCDEFGH12345678', 5000000001, 24, (SELECT id FROM subscription_plans WHERE name = 'Monthly'))`,
          );
          await assertAccepted(
            w,
            `INSERT INTO vip_subscribers (user_id, expiry_date, status, token_id) VALUES (5000000001, '2025-03-01 00:00:00', 'active', (SELECT id FROM invitation_tokens WHERE token = 'ABCDEFGH12345678'))`,
          );
          await assertAccepted(
            w,
            `INSERT INTO content_packages (name, category, type) VALUES ('Pack', 'VIP_CONTENT', 'BUNDLE')`,
          );
          await assertAccepted(
            w,
            `INSERT INTO user_interests (user_id, package_id) VALUES (5000000001, 1), (5000000002, 1)`,
          );

          // The key of users is given, never generated.
          await assertRefused(w, dialect, `INSERT INTO users (first_name, role) VALUES ('Nobody', 'FREE')`, 'notNull');

          const [user] = await w.run(
            `SELECT user_id, username, last_name, role, CAST(created_at AS TEXT) AS created_at, CAST(updated_at AS TEXT) AS updated_at FROM users WHERE user_id = 5000000001`,
          );
          assert.equal(String(user?.user_id), '5000000001');
          assert.equal(user?.username, null);
          assert.equal(user?.last_name, null);
          assert.equal(user?.role, 'VIP');
          assertNowUtc(user?.created_at, dialect, 'users.created_at');
          assertNowUtc(user?.updated_at, dialect, 'users.updated_at');

          const [plan] = await w.run(
            `SELECT id, active, price, CAST(created_at AS TEXT) AS created_at FROM subscription_plans`,
          );
          assert.equal(Number(plan?.id), 1, 'generated id');
          assert.ok(truthy(plan?.active), `subscription_plans.active defaults to true, got ${String(plan?.active)}`);
          assert.equal(plan?.price, 9.99);
          assertNowUtc(plan?.created_at, dialect, 'subscription_plans.created_at');

          const [token] = await w.run(
            `SELECT id, used, used_by, used_at, plan_id, CAST(created_at AS TEXT) AS created_at FROM invitation_tokens`,
          );
          assert.equal(Number(token?.id), 1, 'generated id');
          assert.equal(token?.used, dialect === 'postgres' ? false : 0, 'invitation_tokens.used defaults to false');
          assert.equal(token?.used_by, null);
          assert.equal(token?.used_at, null);
          assert.equal(Number(token?.plan_id), 1);
          assertNowUtc(token?.created_at, dialect, 'invitation_tokens.created_at');

          const [vip] = await w.run(
            `SELECT id, token_id, vip_entry_stage, vip_entry_token, CAST(join_date AS TEXT) AS join_date, CAST(expiry_date AS TEXT) AS expiry_date FROM vip_subscribers`,
          );
          assert.equal(Number(vip?.id), 1, 'generated id');
          assert.equal(Number(vip?.token_id), 1);
          assert.equal(vip?.vip_entry_stage, null);
          assert.equal(vip?.vip_entry_token, null);
          assert.equal(vip?.expiry_date, '2025-03-01 00:00:00');
          assertNowUtc(vip?.join_date, dialect, 'vip_subscribers.join_date');

          const interests = await w.run(`SELECT user_id, is_attended FROM user_interests ORDER BY user_id`);
          assert.deepEqual(
            interests.map((r) => [String(r.user_id), truthy(r.is_attended)]),
            [
              ['5000000001', false],
              ['5000000002', false],
            ],
          );
          if (dialect === 'sqlite') {
            // AUTOINCREMENT: SQLite keeps the highest id handed out, so a deleted row's id is not reused.
            assert.deepEqual(await w.run(`SELECT name, seq FROM sqlite_sequence WHERE name = 'subscription_plans'`), [
              { name: 'subscription_plans', seq: 1 },
            ]);
          }

          // One subscription per user, one use per token string.
          await assertRefused(
            w,
            dialect,
            `INSERT INTO vip_subscribers (user_id, expiry_date, status, token_id) VALUES (5000000001, '2025-04-01 00:00:00', 'active', 1)`,
            'unique',
          );
          await assertRefused(
            w,
            dialect,
            `INSERT INTO invitation_tokens (token, generated_by, duration_hours) VALUES ('ABCDEFGH12345678', 1, 24)`,
            'unique',
          );
          // A subscriber must belong to a user.
          await assertRefused(
            w,
            dialect,
            `INSERT INTO vip_subscribers (user_id, expiry_date, status, token_id) VALUES (7, '2025-04-01 00:00:00', 'active', 1)`,
            'foreignKey',
          );

          // A user with a subscription cannot be deleted, and the refusal leaves the interests alone.
          await assertRefused(w, dialect, `DELETE FROM users WHERE user_id = 5000000001`, 'foreignKey');
          assert.equal((await w.run(`SELECT user_id FROM users`)).length, 2);
          assert.equal((await w.run(`SELECT id FROM user_interests`)).length, 2);

          // Without it, the user goes and takes only their own interests along.
          await assertAccepted(w, `DELETE FROM vip_subscribers WHERE user_id = 5000000001`);
          await assertAccepted(w, `DELETE FROM users WHERE user_id = 5000000001`);
          assert.deepEqual(
            (await w.run(`SELECT user_id FROM users`)).map((r) => String(r.user_id)),
            ['5000000002'],
          );
          assert.deepEqual(
            (await w.run(`SELECT user_id FROM user_interests`)).map((r) => String(r.user_id)),
            ['5000000002'],
          );
          assert.equal((await w.run(`SELECT id FROM content_packages`)).length, 1, 'the package stays');
          // Deleting the package cascades too.
          await assertAccepted(w, `DELETE FROM content_packages`);
          assert.deepEqual(await w.run(`SELECT id FROM user_interests`), []);
        } finally {
          await w.close();
        }
      }));

    it('-1 leaves only the record table, and the initial revision again rebuilds the same schema', () =>
      withTestDb(dialect, async (db) => {
        assert.equal(await migrate(db, REVISION), UP_OUTPUT);
        const before = await db.schema();
        // The snapshot really describes the schema (so that comparing it proves something).
        assert.ok(
          before.some((l) => l.includes('ix_vip_subscribers_user_id')),
          'snapshot lists the indexes',
        );
        assert.ok(
          before.some((l) => l.includes('vip_reactions')),
          'snapshot lists the columns',
        );
        if (dialect === 'postgres') {
          assert.ok(
            before.some((l) => l.startsWith('type userrole: FREE,VIP,ADMIN')),
            'snapshot lists the enum types',
          );
          assert.ok(
            before.some((l) => l.includes('user_interests_user_id_fkey') && l.includes('ON DELETE CASCADE')),
            'snapshot lists the constraints',
          );
        }

        // Some rows, so that the rollback also has data to drop (and SQLite ids to forget).
        const w = await openWriter(db);
        try {
          await w.run(`INSERT INTO users (user_id, first_name, role) VALUES (1, 'Ana', 'VIP')`);
          await w.run(
            `INSERT INTO subscription_plans (name, duration_days, price, currency, created_by) VALUES ('Monthly', 30, 9.99, 'USD', 1)`,
          );
          await w.run(
            `INSERT INTO invitation_tokens (token, generated_by, duration_hours, plan_id) VALUES ('T1', 1, 24, 1)`,
          );
          await w.run(
            `INSERT INTO vip_subscribers (user_id, expiry_date, status, token_id) VALUES (1, '2025-03-01 00:00:00', 'active', 1)`,
          );
        } finally {
          await w.close();
        }

        assert.equal(await migrate(db, '-1'), DOWN_OUTPUT);
        assert.deepEqual(await db.tables(), ['schema_migrations']);
        assert.deepEqual(await db.records(), []);
        if (dialect === 'postgres') {
          assert.deepEqual(
            (await db.query<{ typname: string }>(`SELECT typname FROM pg_type WHERE typtype = 'e'`)).map(
              (r) => r.typname,
            ),
            [],
          );
          // Nothing else is left either: no sequence, index or type of the schema.
          const rels = await db.query<{ relname: string }>(
            `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() ORDER BY c.relname`,
          );
          assert.deepEqual(
            rels.map((r) => r.relname).filter((n) => !n.startsWith('schema_migrations')),
            [],
          );
        } else {
          const objects = await db.query<{ type: string; name: string }>(
            `SELECT type, name FROM sqlite_master ORDER BY type, name`,
          );
          assert.deepEqual(
            objects
              .filter((o) => !o.name.startsWith('sqlite_autoindex_') && o.name !== 'sqlite_sequence')
              .map((o) => `${o.type} ${o.name}`),
            ['table schema_migrations'],
          );
          assert.deepEqual(
            (await db.query<{ name: string }>(`SELECT name FROM sqlite_sequence`)).map((r) => r.name),
            [],
            'sqlite_sequence holds no row of the dropped tables',
          );
        }
        assert.notDeepEqual(await db.schema(), before);

        assert.equal(await migrate(db, REVISION), UP_OUTPUT);
        assert.deepEqual(await db.schema(), before);
        assert.deepEqual(
          (await db.records()).map((r) => [r.revision, r.status]),
          [[REVISION, 'applied']],
        );
        assert.deepEqual(
          (await db.query<{ id: unknown }>(`SELECT id FROM bot_config`)).map((r) => Number(r.id)),
          [1],
        );
        // Generated ids start again at 1 (the identity / sqlite_sequence row went with the table).
        const w2 = await openWriter(db);
        try {
          await w2.run(
            `INSERT INTO subscription_plans (name, duration_days, price, currency, created_by) VALUES ('Weekly', 7, 2.5, 'USD', 1)`,
          );
          assert.deepEqual(
            (await w2.run(`SELECT id FROM subscription_plans`)).map((r) => Number(r.id)),
            [1],
          );
        } finally {
          await w2.close();
        }
      }));
  });
}
