/**
 * libpq's target_session_attrs rules (core/hosts.ts), pure: which server each value accepts.
 * https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-TARGET-SESSION-ATTRS
 * The walk over real hosts is proven in test/failover.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseUrl } from '../runner/core/config.ts';
import { MigrateError } from '../runner/core/errors.ts';
import { refuseWrites, roleOf, type ServerRole, SESSION_ATTRS, suits } from '../runner/core/hosts.ts';

const primary: ServerRole = { address: 'a:5432', standby: false, readOnly: false };
const standby: ServerRole = { address: 'b:5432', standby: true, readOnly: false };
const readOnlyPrimary: ServerRole = { address: 'c:5432', standby: false, readOnly: true, readOnlyFrom: 'database' };

describe('target_session_attrs by libpq', () => {
  it('accepts what libpq accepts, for each value and each kind of server', () => {
    const table: Record<string, [boolean, boolean, boolean]> = {
      // [primary, standby, read-only primary]
      any: [true, true, true],
      'read-write': [true, false, false], // not in hot standby AND default_transaction_read_only off
      'read-only': [false, true, true],
      primary: [true, false, true], // not in hot standby, read-only or not
      standby: [false, true, false],
      'prefer-standby': [false, true, false], // first pass; the second takes any
    };
    assert.deepEqual(Object.keys(table).sort(), [...SESSION_ATTRS].sort());
    for (const [attrs, expected] of Object.entries(table)) {
      const got = [primary, standby, readOnlyPrimary].map((r) => suits(attrs as never, r));
      assert.deepEqual(got, expected, attrs);
    }
  });

  it('reads the role from the first query: a standby is never also counted read-only; lag rounded', () => {
    const r = roleOf(
      { in_recovery: true, read_only: true, read_only_from: null, replay_lag_ms: 1234.6 },
      { host: 'h', port: 5433 },
    );
    assert.deepEqual(r, { address: 'h:5433', standby: true, readOnly: false, replayLagMs: 1235 });
    const ro = roleOf(
      { in_recovery: false, read_only: true, read_only_from: 'user', replay_lag_ms: null },
      { port: 5432 },
    );
    assert.deepEqual(ro, { address: 'localhost:5432', standby: false, readOnly: true, readOnlyFrom: 'user' });
  });

  it('refuses writes on a standby (STANDBY) and a read-only session (READ_ONLY_SESSION), exit 3', () => {
    assert.equal(refuseWrites(primary), undefined);
    const s = refuseWrites(standby);
    assert.equal(s?.code, 'STANDBY');
    assert.equal(s?.exitCode, 3);
    assert.match(s?.message ?? '', /b:5432 is a hot standby.*target_session_attrs=read-write/);
    const ro = refuseWrites(readOnlyPrimary);
    assert.equal(ro?.code, 'READ_ONLY_SESSION');
    assert.equal(ro?.exitCode, 3);
    assert.match(ro?.message ?? '', /default_transaction_read_only = on for this database/);
  });

  it('a value libpq does not know is BAD_URL before anything connects', () => {
    assert.throws(
      () => parseUrl('postgres://u@a:5432,b:5432/db?target_session_attrs=master'),
      (e: unknown) => e instanceof MigrateError && e.code === 'BAD_URL' && /prefer-standby/.test(e.message),
    );
    const c = parseUrl('postgres://u@a:5432,b:5433/db?target_session_attrs=read-write');
    assert.equal(c.dialect === 'postgres' && c.server.targetSessionAttrs, 'read-write');
  });
});
