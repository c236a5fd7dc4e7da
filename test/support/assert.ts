/** Assertions shared by the pure tests. */
import assert from 'node:assert/strict';
import { MigrateError, type ErrorCode } from '../../runner/core/errors.ts';

/** Run `fn`, expect a MigrateError with `code` (a usage error: exit 2), and return its message. */
export function failure(fn: () => unknown, code: ErrorCode): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MigrateError, `expected MigrateError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.exitCode, 2);
    return e.message;
  }
  assert.fail(`expected ${code}, nothing was thrown`);
}
