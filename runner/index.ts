/** The public API: re-exports only. */
export { migrate, renderScript, status } from './core/migrator.ts';
export { stamp, type StampResult } from './core/stamp.ts';
export type {
  MigrateEvent,
  MigrateOptions,
  MigrateResult,
  Revision,
  RevisionStatus,
  RunnerConfig,
  StatusResult,
  StepResult,
} from './core/migrator.ts';
export { createMigration } from './core/create.ts';
export {
  migrateFleet,
  fleetExitCode,
  parseTargets,
  FLEET_OUTCOMES,
  type FleetConfig,
  type FleetCounts,
  type FleetError,
  type FleetEvent,
  type FleetOptions,
  type FleetOutcome,
  type FleetResult,
  type FleetTargetResult,
} from './core/fleet.ts';
export { fleetStatus, type FleetStanding, type FleetStatusResult } from './core/fleet-status.ts';
export { check } from './check/check.ts';
export type { CheckCode, CheckConfig, CheckOptions, CheckResult, Finding, RoundTrips } from './check/check.ts';
export { annotations, stepSummary, type Annotations } from './check/report/github.ts';
export { sarifLog, type SarifTool } from './check/report/sarif.ts';
export { codeQuality, type CodeQualityItem } from './check/report/gitlab.ts';
export { fingerprints, type ReadText } from './check/report/fingerprint.ts';
export { fails, FAIL_ON, type FailOn } from './check/report/fail-on.ts';
export { liveSchema, schemaOf, type DialectSchema, type SchemaConfig } from './catalog/schema-command.ts';
export { drift, type DriftConfig, type DriftResult, type DriftItem } from './catalog/drift.ts';
export type { Catalog, CatalogObject, ObjectKind } from './catalog/model.ts';
export type { Column, Difference, EnumType, Family, ForeignKey, Index, Schema, Table } from './catalog/schema.ts';
export { loadMigrations, type Dialect, type Migration, type MigrationFile, type Phase } from './core/files.ts';
export { parseTarget, plan, type Plan, type Step, type Target, type Warning } from './core/plan.ts';
export {
  parseUrl,
  redactUrl,
  ACCEPTED_URLS,
  DEFAULT_DIR,
  DEFAULT_TABLE,
  DEFAULT_URL,
  type Connection,
} from './core/config.ts';
export { MigrateError, MigrationFailed, EXIT, type ErrorCode } from './core/errors.ts';
export type { Driver } from './core/driver.ts';
export type { Direction } from './core/files.ts';
export type { RecordRow } from './core/record.ts';
export type { LockHolder, LockWaitEvent } from './core/lock-wait.ts';
