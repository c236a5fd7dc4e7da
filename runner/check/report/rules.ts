/**
 * A one-line description of each finding code, for the formats that describe their rules
 * (SARIF's `shortDescription`). docs/errors.md#check-findings is the full list; a code missing
 * here still gets a rule, described by its name, so a new finding needs no change in a format.
 *
 * @module
 */

const DESCRIPTIONS: Record<string, string> = {
  BAD_FILENAME: 'A .sql file whose name is not <version>_<description>.up.sql or .down.sql',
  MISSING_DOWN: 'An up file without its down file',
  MISSING_UP: 'A down file without its up file',
  DUPLICATE_VERSION: 'Two migrations share a version',
  UNKNOWN_DIRECTIVE: 'A -- migrate: line the runner does not know',
  MISPLACED_DIRECTIVE: "A directive below the file's leading comment block",
  DIALECT_MISMATCH: 'A revision present in one dialect folder and not the other',
  TRANSACTION_CONTROL: 'BEGIN, COMMIT or the like inside a transactional file',
  NUL_BYTE: 'A file holds a NUL byte',
  BAD_ENCODING: 'A file is not valid UTF-8',
  UNREADABLE_FILE: 'A migration entry that cannot be read as a file',
  NEEDS_NO_TRANSACTION: 'A statement that cannot run inside a transaction, in a transactional file',
  ENUM_VALUE_IN_TRANSACTION: 'ALTER TYPE … ADD VALUE inside a transactional PostgreSQL file',
  NO_TRANSACTION_MULTI: 'A no-transaction file with more than one statement',
  LONG_IDENTIFIER: "A name longer than PostgreSQL's 63 bytes",
  BAD_WAIVER: 'A waiver without a reason, or with a wildcard',
  EMPTY_UP: 'An up file with no statement, only comments',
  MIGRATION_FAILED: 'A file failed on a scratch database',
  ROUND_TRIP: 'After up and down the schema is not what it was before the up',
  REAPPLY: 'Up again after the down builds another schema than the first up',
  DIALECT_DIFFERENCE: "The dialects' schemas differ after a revision",
  UNUSED_WAIVER: 'A waiver that accepts nothing where it stands',
  LOCKS_TABLE: 'A statement takes a lock above ROW EXCLUSIVE on an existing table (measured)',
  REWRITES_TABLE: 'A statement rewrites an existing table (measured)',
  FAILS_ON_DATA: 'A file that runs on empty tables fails on populated ones',
  DATA_LOSS: 'Rows lost, added or changed by up and down on populated tables',
  DATA_GENERATION: 'check could not generate most rows for a table',
  SCHEMA_STALE: 'A committed schema file differs from what the folder builds',
  ORDER_CONFLICT: 'A revision added since the base sorts before the newest revision the base already has',
  PHASE_ORDER: 'All pre revisions, then all post ones, build another schema than version order',
  CONTRACT_IN_PRE: 'A pre-rollout revision removes or narrows what the running release may still use',
  COMPAT_BREAK: 'A statement of the running release fails after a pre-rollout revision',
};

/** The code's description, or the code in words when it has none here. */
export function ruleDescription(code: string): string {
  const known = DESCRIPTIONS[code];
  if (known) return known;
  const words = code.toLowerCase().replace(/_/g, ' ');
  return `${words.charAt(0).toUpperCase()}${words.slice(1)} (see docs/errors.md)`;
}
