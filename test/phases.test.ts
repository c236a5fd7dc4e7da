/**
 * Deploy phases (issue #30): `-- migrate:phase post`, `head --phase=pre` (and MIGRATE_PHASE),
 * history's "pending (post)", the dialects agreeing on a revision's phase. Pure plan tests, then
 * the CLI as a user runs it on each dialect.
 */
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecordRow } from '../runner/core/record.ts';
import { checksumOf, loadMigrations, versionOf, type Migration, type MigrationFile } from '../runner/core/files.ts';
import { assess, parseTarget, plan, type Plan } from '../runner/core/plan.ts';
import { fixture, maskDurations, ROOT, runCli } from './support/cli.ts';
import { TEST_DIALECTS, withTestDb, type TestDb } from './support/db.ts';

const PHASES = fixture('phases');
const ENTRYPOINT = join(ROOT, 'scripts', 'docker-entrypoint.sh');

function file(path: string, text: string, post: boolean): MigrationFile {
  return {
    path,
    text,
    checksum: checksumOf(text),
    transactional: true,
    allowDifferences: [],
    ...(post ? { phase: 'post' as const } : {}),
  };
}

function mig(n: number, post = false): Migration {
  const revision = `00000${n}`;
  const stem = `${revision}_r${n}`;
  return {
    version: versionOf(revision),
    revision,
    description: `r${n}`,
    stem,
    up: file(`sql/${stem}.up.sql`, `CREATE TABLE t${n} (id int);\n`, post),
    down: file(`sql/${stem}.down.sql`, `DROP TABLE t${n};\n`, false),
  };
}

function rows(...ms: Migration[]): RecordRow[] {
  return ms.map((m, i) => ({
    revision: m.revision,
    name: m.description,
    checksum: m.up.checksum,
    status: 'applied',
    appliedAt: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
    durationMs: 1,
    seq: i + 1,
    statementsRun: null,
    error: null,
  }));
}

const ups = (p: Plan) => p.steps.map((s) => `${s.direction} ${s.migration.revision}`);
const [M1, M2, M3, M4, M5] = [mig(1), mig(2), mig(3, true), mig(4), mig(5, true)] as Migration[] &
  [Migration, Migration, Migration, Migration, Migration];
const ALL = [M1, M2, M3, M4];

describe('plan with phases (pure)', () => {
  test('pre applies the pending pre revisions in version order and leaves the post one', () => {
    const p = plan(ALL, [], parseTarget('head'), { phase: 'pre' });
    assert.deepEqual(ups(p), ['up 000001', 'up 000002', 'up 000004']);
    assert.deepEqual(p.warnings, []);
  });

  test('then head (no phase, or post) applies the post revision, with no OUT_OF_ORDER warning', () => {
    const applied = rows(M1, M2, M4);
    for (const phase of [undefined, 'post'] as const) {
      const p = plan(ALL, applied, parseTarget('head'), phase ? { phase } : {});
      assert.deepEqual(ups(p), ['up 000003']);
      assert.deepEqual(p.warnings, []);
    }
    // --strict does not refuse it either: waiting for the rollout is not being late.
    assert.deepEqual(ups(plan(ALL, applied, parseTarget('head'), { strict: true })), ['up 000003']);
    assert.deepEqual(assess(ALL, applied).outOfOrder, []);
  });

  test('a post revision older than an applied post revision is out of order', () => {
    const folder = [...ALL, M5];
    const a = assess(folder, rows(M1, M2, M4, M5));
    assert.deepEqual(
      a.outOfOrder.map((m) => m.revision),
      ['000003'],
    );
    const p = plan(folder, rows(M1, M2, M4, M5), parseTarget('head'));
    assert.deepEqual(
      p.warnings.map((w) => w.code),
      ['OUT_OF_ORDER'],
    );
  });

  test('a pre revision older than the newest applied one is still out of order', () => {
    const p = plan(ALL, rows(M1, M4), parseTarget('head'), { phase: 'pre' });
    assert.deepEqual(ups(p), ['up 000002']);
    assert.deepEqual(
      p.warnings.map((w) => w.code),
      ['OUT_OF_ORDER'],
    );
  });

  test('+N and a named revision count pre revisions only; rollbacks are unchanged', () => {
    assert.deepEqual(ups(plan(ALL, rows(M1, M2), parseTarget('+1'), { phase: 'pre' })), ['up 000004']);
    assert.deepEqual(ups(plan(ALL, [], parseTarget('000003'), { phase: 'pre' })), ['up 000001', 'up 000002']);
    assert.deepEqual(ups(plan(ALL, rows(M1, M2, M4), parseTarget('-2'), { phase: 'pre' })), [
      'down 000004',
      'down 000002',
    ]);
  });
});

describe('the dialects agree on each revision phase', () => {
  it('a post revision whose other dialect says pre is refused when running a phase, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mig-phase-mismatch-'));
    try {
      cpSync(PHASES, dir, { recursive: true });
      const lite = join(dir, 'sqlite', '000003_drop_nick.up.sql');
      writeFileSync(lite, readFileSync(lite, 'utf8').replace('-- migrate:phase post\n', ''));
      assert.equal(loadMigrations(dir, 'postgres').length, 4); // without a phase, nothing to compare
      for (const dialect of ['postgres', 'sqlite'] as const) {
        assert.throws(
          () => loadMigrations(dir, dialect, { phases: true }),
          (e: Error & { code?: string }) =>
            e.code === 'PHASE_MISMATCH' && e.message.includes(join(dir, 'sqlite', '000003_drop_nick.up.sql')),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a phase other than pre or post is an unknown directive at its line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mig-phase-bad-'));
    try {
      cpSync(PHASES, dir, { recursive: true });
      const pg = join(dir, 'postgres', '000003_drop_nick.up.sql');
      writeFileSync(pg, readFileSync(pg, 'utf8').replace('phase post', 'phase later'));
      assert.throws(
        () => loadMigrations(dir, 'postgres'),
        (e: Error & { code?: string }) =>
          e.code === 'UNKNOWN_DIRECTIVE' && /000003_drop_nick\.up\.sql:1: /.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const dialect of TEST_DIALECTS) {
  describe(`phases on ${dialect}, from the CLI`, () => {
    const cli = (db: TestDb, args: string[], env: Record<string, string> = {}) =>
      runCli([...args, '--url', db.url, '--dir', PHASES], { env });
    const applied = async (db: TestDb) => (await db.records()).map((r) => r.revision);

    for (const how of ['--phase=pre', 'MIGRATE_PHASE=pre'] as const) {
      it(`${how}: 1, 2 and 4 applied, 3 pending as post, no OUT_OF_ORDER; head then applies 3`, () =>
        withTestDb(dialect, async (db) => {
          const pre =
            how === '--phase=pre' ? await cli(db, ['head', how]) : await cli(db, ['head'], { MIGRATE_PHASE: 'pre' });
          assert.equal(pre.code, 0, pre.stderr);
          assert.equal(
            maskDurations(pre.stdout),
            'up    000001  users  (N ms)\nup    000002  add_name  (N ms)\nup    000004  posts  (N ms)\nat 000004 (posts)\n',
          );
          assert.doesNotMatch(pre.stderr, /OUT_OF_ORDER|warning/);
          assert.deepEqual(await applied(db), ['000001', '000002', '000004']);
          // The post revision has not run: nick is still there for the old release.
          const columns = await db.schema();
          assert.ok(
            columns.some((l) => /users.*nick/.test(l)),
            columns.join('\n'),
          );

          const history = await cli(db, ['history']);
          assert.equal(history.code, 0, history.stderr);
          assert.match(history.stdout, /^000003 {2}drop_nick {2}pending \(post\)$/m);
          assert.doesNotMatch(history.stdout, /out of order/);
          const json = JSON.parse((await cli(db, ['history', '--json'])).stdout);
          assert.deepEqual(
            json.revisions.map((r: { state: string; phase: string }) => `${r.state} ${r.phase}`),
            ['applied pre', 'applied pre', 'pending post', 'applied pre'],
          );

          // Again with the phase: nothing to do, the post revision still waits, still no warning.
          const again = await cli(db, ['head', '--phase=pre']);
          assert.equal(again.code, 0, again.stderr);
          assert.match(again.stdout, /^nothing to do; at 000004 \(posts\)$/m);
          assert.doesNotMatch(again.stderr, /OUT_OF_ORDER/);

          const post = await cli(db, ['head']);
          assert.equal(post.code, 0, post.stderr);
          assert.equal(maskDurations(post.stdout), 'up    000003  drop_nick  (N ms)\nat 000003 (drop_nick)\n');
          assert.doesNotMatch(post.stderr, /OUT_OF_ORDER/);
          assert.deepEqual(await applied(db), ['000001', '000002', '000004', '000003']);
          assert.ok(!(await db.schema()).some((l) => /users.*nick/.test(l)));
        }));
    }

    it('the Docker entrypoint with MIGRATE_PHASE=pre migrates the pre revisions, then runs the command', () =>
      withTestDb(dialect, async (db) => {
        const marker = join(db.dir, 'started');
        const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
          execFile(
            'sh',
            [ENTRYPOINT, 'node', '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'yes')`],
            { env: { ...process.env, DATABASE_URL: db.url, MIGRATIONS_DIR: PHASES, MIGRATE_PHASE: 'pre' } },
            (error, _stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stderr }),
          );
        });
        assert.equal(r.code, 0, r.stderr);
        assert.ok(existsSync(marker), 'the command ran');
        assert.deepEqual(await applied(db), ['000001', '000002', '000004']);
      }));

    it('--phase=post applies everything in version order; -1 rolls back as always', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['head', '--phase=post']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await applied(db), ['000001', '000002', '000003', '000004']);
        const back = await cli(db, ['-1', '--phase=pre']);
        assert.equal(back.code, 0, back.stderr);
        assert.deepEqual(await applied(db), ['000001', '000002', '000003']);
      }));

    for (const bad of [['--phase=later'], ['--phase=PRE']]) {
      it(`${bad[0]} exits 2 and changes nothing`, () =>
        withTestDb(dialect, async (db) => {
          const r = await cli(db, ['head', ...bad]);
          assert.equal(r.code, 2, r.stdout + r.stderr);
          assert.match(r.stderr, /--phase takes pre or post.*\[BAD_OPTION\]/);
          assert.deepEqual(await applied(db), []);
        }));
    }

    it('MIGRATE_PHASE=garbage exits 2 too', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['head'], { MIGRATE_PHASE: 'rolling' });
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.deepEqual(await applied(db), []);
      }));

    it('--phase does not apply to history (exit 2)', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['history', '--phase=pre']);
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.match(r.stderr, /--phase does not apply to history/);
      }));
  });
}
