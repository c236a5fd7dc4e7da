/**
 * A database schema in one shape both dialects share, and the ways two of them can differ.
 *
 * Each dialect's reader fills it in (catalog/sqlite-schema.ts, catalog/postgres-schema.ts); `check`
 * compares two snapshots of one database (a down must undo exactly what its up did) and the
 * snapshots of the two dialects at the same revision (both folders must describe one schema):
 * schema-compare.ts.
 *
 * @module
 */

/**
 * What a column holds, in terms both dialects can state. SQLite has no boolean, timestamp, json
 * or enum type: its driver derives those families from the column's CHECK constraints
 * (`col IN (0, 1)`, `json_valid(col)`, `col IN ('A', 'B')`) or from a declared type name
 * SQLite itself ignores (`BOOLEAN`, `DATETIME`, `JSON`).
 */
export type Family = 'integer' | 'text' | 'boolean' | 'timestamp' | 'json' | 'numeric' | 'float' | 'enum' | 'other';

export interface Column {
  name: string;
  /** The type as the dialect spells it (`varchar(100)`, `TEXT`); compared within a dialect only. */
  type: string;
  family: Family;
  nullable: boolean;
  /** A DEFAULT the schema states (not a value the database generates: see `generated`). */
  hasDefault: boolean;
  /** The default as the database prints it; compared within a dialect only. */
  default: string | null;
  /**
   * The database fills the value in: PostgreSQL's identity, serial and generated columns,
   * SQLite's INTEGER PRIMARY KEY (the rowid) and generated columns.
   */
  generated: boolean;
  /** family `enum`: the labels (a PostgreSQL enum type's, in order, or a CHECK's IN list). */
  values?: string[];
  /** At most this many characters: `varchar(n)`, or `CHECK (length(col) <= n)`. */
  maxLength?: number;
}

export interface ForeignKey {
  columns: string[];
  refTable: string;
  refColumns: string[];
  /** `NO ACTION`, `RESTRICT`, `CASCADE`, `SET NULL`, `SET DEFAULT`. */
  onDelete: string;
}

/** An index created by name (`CREATE INDEX`); indexes that back a constraint are not listed. */
export interface Index {
  name: string;
  /** Column names in key order; an expression as `(expression text)`; ` DESC` appended when descending. */
  columns: string[];
  unique: boolean;
  /** The WHERE of a partial index, as the database prints it; null for a full index. */
  where: string | null;
}

export interface Table {
  /** Unqualified when in the default schema (PostgreSQL's `public`, SQLite's `main`), else `schema.table`. */
  name: string;
  columns: Column[];
  /** Columns in key order; [] without a primary key. */
  primaryKey: string[];
  foreignKeys: ForeignKey[];
  /** Each unique column set (a UNIQUE constraint or a full unique index on plain columns), sorted. */
  uniques: string[][];
  indexes: Index[];
  /** CHECK expressions as the database prints them; compared within a dialect only. */
  checks: string[];
}

export interface EnumType {
  name: string;
  values: string[];
}

export interface Schema {
  tables: Table[];
  /** PostgreSQL's enum types (SQLite has none). */
  enums: EnumType[];
  /**
   * Everything else the database holds, keyed by kind and name (`view v`, `trigger t on users`,
   * `sequence s`, `function f(integer)`), with a definition to compare ('' when none);
   * compared within a dialect only.
   */
  others: Record<string, string>;
}

/**
 * One way two schemas differ. `subject` is what a `-- migrate:allow-difference` line names to
 * accept it; `object` names the thing in a sentence.
 */
export interface Difference {
  subject: string;
  object: string;
  /** Present on the left only, on the right only, or on both sides but not alike. */
  kind: 'onlyLeft' | 'onlyRight' | 'changed';
  /** changed: where the difference is (`users.email`, `index ix_users_email`) and each side's value, as words. */
  at?: string;
  left?: string;
  right?: string;
}

/**
 * A waiver's subject, or a difference's, in one spelling: case, runs of blanks and blanks
 * inside parentheses do not matter (`Users.Email  nullable` = `users.email nullable`,
 * `users unique ( a,b )` = `users unique (a, b)`).
 */
export function normaliseSubject(subject: string): string {
  return subject
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/\(\s*/g, '(')
    .replace(/\s*\)/g, ')')
    .replace(/\s*,\s*/g, ', ')
    .trim();
}
