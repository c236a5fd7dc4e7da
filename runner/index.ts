/** The public API: re-exports only. */
export { migrate, renderScript, stamp, status } from './migrator.ts';
export type {
  MigrateEvent,
  MigrateOptions,
  MigrateResult,
  Revision,
  RevisionStatus,
  RunnerConfig,
  StampResult,
  StatusResult,
  StepResult,
} from './migrator.ts';
export { createMigration } from './create.ts';
export { check } from './check.ts';
export type { CheckCode, CheckConfig, CheckOptions, CheckResult, Finding, RoundTrips } from './check.ts';
export { liveSchema, schemaOf, type DialectSchema, type SchemaConfig } from './schema-command.ts';
export { drift, type DriftConfig, type DriftResult, type DriftItem } from './drift.ts';
export type { Catalog, CatalogObject, ObjectKind } from './catalog/model.ts';
export type { Column, Difference, EnumType, Family, ForeignKey, Index, Schema, Table } from './schema.ts';
export { loadMigrations, type Dialect, type Migration, type MigrationFile } from './files.ts';
export { parseTarget, plan, type Plan, type Step, type Target, type Warning } from './plan.ts';
export {
  parseUrl,
  redactUrl,
  ACCEPTED_URLS,
  DEFAULT_DIR,
  DEFAULT_TABLE,
  DEFAULT_URL,
  type Connection,
} from './config.ts';
export { MigrateError, MigrationFailed, EXIT, type ErrorCode } from './errors.ts';
export type { Direction, Driver, RecordRow } from './driver.ts';
