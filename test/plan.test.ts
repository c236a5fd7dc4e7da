import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type RecordRow, failedNote } from '../runner/core/record.ts';
import { failure } from './support/assert.ts';
import { checksumOf, versionOf, type Migration, type MigrationFile } from '../runner/core/files.ts';
import { appliedAfter, assess, current, parseTarget, plan, type Plan, type Target } from '../runner/core/plan.ts';

function file(path: string, text: string): MigrationFile {
  return { path, text, checksum: checksumOf(text), transactional: true, allowDifferences: [] };
}

function mig(revision: string, description: string): Migration {
  const stem = `${revision}_${description}`;
  return {
    version: versionOf(revision),
    revision,
    description,
    stem,
    up: file(`sql/sqlite/${stem}.up.sql`, `CREATE TABLE t_${description.replace(/\W/g, '_')} (id int);\n`),
    down: file(`sql/sqlite/${stem}.down.sql`, `DROP TABLE t_${description.replace(/\W/g, '_')};\n`),
  };
}

/** A record row for a migration (or a bare revision/name, for files that are gone). */
function row(
  m: Migration | { revision: string; description: string },
  seq: number,
  extra: Partial<RecordRow> = {},
): RecordRow {
  return {
    revision: m.revision,
    name: m.description,
    checksum: 'up' in m ? m.up.checksum : checksumOf(`gone ${m.revision}`),
    status: 'applied',
    appliedAt: new Date(Date.UTC(2025, 0, 1, 0, 0, seq)).toISOString(),
    durationMs: 3,
    seq,
    statementsRun: null,
    error: null,
    ...extra,
  };
}

/** Rows for `ms`, applied in the order given. */
const rows = (...ms: Migration[]): RecordRow[] => ms.map((m, i) => row(m, i + 1));

const M1 = mig('20250101_000000', 'one');
const M2 = mig('20250102_000000', 'two');
const M3 = mig('20250103_000000', 'three');
const M4 = mig('20250104_000000', 'four');
const ALL = [M1, M2, M3, M4];

/** `up 20250101_000000`, `down …`: the plan as a person reads it. */
const steps = (p: Plan): string[] => p.steps.map((s) => `${s.direction} ${s.migration.revision}`);
const t = (text: string): Target => parseTarget(text);

describe('parseTarget', () => {
  test('head and base', () => {
    assert.deepEqual(parseTarget('head'), { kind: 'head' });
    assert.deepEqual(parseTarget('base'), { kind: 'base' });
  });

  test('+N and -N', () => {
    assert.deepEqual(parseTarget('+1'), { kind: 'forward', count: 1 });
    assert.deepEqual(parseTarget('+12'), { kind: 'forward', count: 12 });
    assert.deepEqual(parseTarget('-1'), { kind: 'back', count: 1 });
    assert.deepEqual(parseTarget('-03'), { kind: 'back', count: 3 });
  });

  for (const zero of ['+0', '-0', '-000']) {
    test(`${zero} moves nowhere: BAD_TARGET`, () => {
      failure(() => parseTarget(zero), 'BAD_TARGET');
    });
  }

  for (const garbage of [
    "'; drop table x; --",
    '',
    ' ',
    'head; rm -rf /',
    '+1x',
    '+-1',
    '1 2',
    '$(id)',
    'héad',
    '+99999999999999999999',
  ]) {
    test(`${JSON.stringify(garbage)} is BAD_TARGET`, () => {
      const msg = failure(() => parseTarget(garbage), 'BAD_TARGET');
      assert.ok(msg.includes(garbage), msg);
    });
  }

  for (const name of [
    '20250128_140000',
    '20250128_140000_initial_schema',
    '000001',
    '1',
    '20210422143411_x',
    '3_release_v6.0',
    'add-users',
  ]) {
    test(`${name} is a revision name`, () => {
      assert.deepEqual(parseTarget(name), { kind: 'revision', name });
    });
  }
});

describe('plan: a fresh database', () => {
  test('head applies everything in version order', () => {
    const p = plan([M1, M2, M3, M4], [], t('head'));
    assert.deepEqual(steps(p), [
      'up 20250101_000000',
      'up 20250102_000000',
      'up 20250103_000000',
      'up 20250104_000000',
    ]);
    assert.deepEqual(p.warnings, []);
    assert.equal(p.steps[0]?.migration, M1);
  });

  test('+2 applies the next two', () => {
    assert.deepEqual(steps(plan(ALL, [], t('+2'))), ['up 20250101_000000', 'up 20250102_000000']);
  });

  test('+4 applies all four, +5 is NOT_ENOUGH_PENDING', () => {
    assert.equal(plan(ALL, [], t('+4')).steps.length, 4);
    const msg = failure(() => plan(ALL, [], t('+5')), 'NOT_ENOUGH_PENDING');
    assert.match(msg, /\b5\b/);
    assert.match(msg, /\b4\b/);
  });

  test('base does nothing', () => {
    assert.deepEqual(steps(plan(ALL, [], t('base'))), []);
  });

  test('-1 is NOT_ENOUGH_APPLIED', () => {
    failure(() => plan(ALL, [], t('-1')), 'NOT_ENOUGH_APPLIED');
  });

  test('a revision applies up to and including it', () => {
    assert.deepEqual(steps(plan(ALL, [], t('20250102_000000'))), ['up 20250101_000000', 'up 20250102_000000']);
  });
});

describe('plan: two of four applied', () => {
  const R = rows(M1, M2);

  test('head applies the other two', () => {
    const p = plan(ALL, R, t('head'));
    assert.deepEqual(steps(p), ['up 20250103_000000', 'up 20250104_000000']);
    assert.deepEqual(p.warnings, []);
  });

  test('+1 applies the next one', () => {
    assert.deepEqual(steps(plan(ALL, R, t('+1'))), ['up 20250103_000000']);
  });

  test('+3 is NOT_ENOUGH_PENDING', () => {
    failure(() => plan(ALL, R, t('+3')), 'NOT_ENOUGH_PENDING');
  });

  test('-1 rolls back the last one', () => {
    assert.deepEqual(steps(plan(ALL, R, t('-1'))), ['down 20250102_000000']);
  });

  test('-2 and base roll back both, newest first', () => {
    assert.deepEqual(steps(plan(ALL, R, t('-2'))), ['down 20250102_000000', 'down 20250101_000000']);
    assert.deepEqual(steps(plan(ALL, R, t('base'))), ['down 20250102_000000', 'down 20250101_000000']);
  });

  test('-5 is NOT_ENOUGH_APPLIED and says how many are applied', () => {
    const msg = failure(() => plan(ALL, R, t('-5')), 'NOT_ENOUGH_APPLIED');
    assert.match(msg, /\b5\b/);
    assert.match(msg, /\b2\b/);
  });

  test('a later revision applies up to it', () => {
    assert.deepEqual(steps(plan(ALL, R, t('20250103_000000'))), ['up 20250103_000000']);
  });

  test('an earlier revision rolls back every revision after it', () => {
    assert.deepEqual(steps(plan(ALL, R, t('20250101_000000'))), ['down 20250102_000000']);
  });

  test('the current revision is a no-op', () => {
    assert.deepEqual(steps(plan(ALL, R, t('20250102_000000'))), []);
  });

  test('a revision named by its full stem works like its version', () => {
    assert.deepEqual(steps(plan(ALL, R, t('20250104_000000_four'))), ['up 20250103_000000', 'up 20250104_000000']);
    assert.deepEqual(steps(plan(ALL, R, t('20250101_000000_one'))), ['down 20250102_000000']);
  });

  test('the compact form of a timestamp version names it too', () => {
    assert.deepEqual(steps(plan(ALL, R, t('20250103000000'))), ['up 20250103_000000']);
  });
});

describe('plan: three of four applied', () => {
  test('+3 with one pending is NOT_ENOUGH_PENDING and says how many are pending', () => {
    const msg = failure(() => plan(ALL, rows(M1, M2, M3), t('+3')), 'NOT_ENOUGH_PENDING');
    assert.match(msg, /\b3\b/);
    assert.match(msg, /\b1\b/);
  });

  test('+1 applies the last', () => {
    assert.deepEqual(steps(plan(ALL, rows(M1, M2, M3), t('+1'))), ['up 20250104_000000']);
  });
});

describe('plan: all applied', () => {
  const R = rows(M1, M2, M3, M4);

  test('head is a no-op', () => {
    assert.deepEqual(plan(ALL, R, t('head')), { steps: [], warnings: [] });
  });

  test('+1 is NOT_ENOUGH_PENDING', () => {
    failure(() => plan(ALL, R, t('+1')), 'NOT_ENOUGH_PENDING');
  });

  test('base rolls back all four, newest first', () => {
    assert.deepEqual(steps(plan(ALL, R, t('base'))), [
      'down 20250104_000000',
      'down 20250103_000000',
      'down 20250102_000000',
      'down 20250101_000000',
    ]);
  });

  test('a revision two back rolls back two', () => {
    assert.deepEqual(steps(plan(ALL, R, t('20250102_000000_two'))), ['down 20250104_000000', 'down 20250103_000000']);
  });

  test('a down step carries the migration, whose down file is what runs', () => {
    const [s] = plan(ALL, R, t('-1')).steps;
    assert.equal(s?.migration, M4);
    assert.equal(s?.migration.down.path, 'sql/sqlite/20250104_000000_four.down.sql');
  });
});

describe('plan: rollback follows the order of application', () => {
  // M3 was applied before M2 (M2 arrived late from another branch).
  const R = [row(M1, 1), row(M3, 2), row(M2, 3)];

  test('-1 rolls back the one applied last, not the highest version', () => {
    assert.deepEqual(steps(plan(ALL, R, t('-1'))), ['down 20250102_000000']);
  });

  test('-2 and base go in reverse order of application', () => {
    assert.deepEqual(steps(plan(ALL, R, t('-2'))), ['down 20250102_000000', 'down 20250103_000000']);
    assert.deepEqual(steps(plan(ALL, R, t('base'))), [
      'down 20250102_000000',
      'down 20250103_000000',
      'down 20250101_000000',
    ]);
  });

  test('rows given in any order are sorted by seq', () => {
    assert.deepEqual(steps(plan(ALL, [R[2]!, R[0]!, R[1]!], t('base'))), [
      'down 20250102_000000',
      'down 20250103_000000',
      'down 20250101_000000',
    ]);
  });

  test('a revision target rolls back the later versions in reverse order of application', () => {
    assert.deepEqual(steps(plan(ALL, R, t('20250101_000000'))), ['down 20250102_000000', 'down 20250103_000000']);
  });

  test('current is the row applied last', () => {
    assert.equal(current(R)?.revision, '20250102_000000');
    assert.equal(current([]), undefined);
  });
});

describe('plan: out-of-order revisions', () => {
  // M3 arrived after M4 was applied.
  const R = rows(M1, M2, M4);

  test('head applies it with an OUT_OF_ORDER warning naming it', () => {
    const p = plan(ALL, R, t('head'));
    assert.deepEqual(steps(p), ['up 20250103_000000']);
    assert.deepEqual(
      p.warnings.map((w) => w.code),
      ['OUT_OF_ORDER'],
    );
    assert.ok(p.warnings[0]?.message.includes('20250103_000000_three'), p.warnings[0]?.message);
  });

  test('strict makes it an OUT_OF_ORDER error naming it', () => {
    const msg = failure(() => plan(ALL, R, t('head'), { strict: true }), 'OUT_OF_ORDER');
    assert.ok(msg.includes('20250103_000000_three'), msg);
    failure(() => plan(ALL, R, t('+1'), { strict: true }), 'OUT_OF_ORDER');
  });

  test('strict does not refuse a rollback that leaves it pending', () => {
    assert.deepEqual(steps(plan(ALL, R, t('-1'), { strict: true })), ['down 20250104_000000']);
  });

  test('pending revisions newer than every applied one are not out of order', () => {
    assert.deepEqual(plan(ALL, rows(M1), t('head'), { strict: true }).warnings, []);
  });

  test('naming it rolls back the newer one, then applies it', () => {
    const p = plan(ALL, R, t('20250103_000000_three'));
    assert.deepEqual(steps(p), ['down 20250104_000000', 'up 20250103_000000']);
    assert.deepEqual(
      p.warnings.map((w) => w.code),
      ['OUT_OF_ORDER'],
    );
  });

  test('naming an earlier one does not apply it', () => {
    assert.deepEqual(steps(plan(ALL, R, t('20250102_000000'))), ['down 20250104_000000']);
  });

  test('assess lists it', () => {
    const a = assess(ALL, R);
    assert.deepEqual(a.outOfOrder, [M3]);
    assert.deepEqual(a.pending, [M3]);
    assert.deepEqual(a.missing, []);
  });
});

describe('plan: revisions by name', () => {
  test('an unknown revision is UNKNOWN_REVISION naming it', () => {
    for (const name of ['nope', '20990101_000000', '20250101_000000_uno', '5']) {
      const msg = failure(() => plan(ALL, rows(M1), t(name)), 'UNKNOWN_REVISION');
      assert.ok(msg.includes(`"${name}"`), msg);
    }
  });

  test('golang-migrate versions: by number, by written form, by stem', () => {
    const G = [mig('000001', 'init'), mig('000002', 'users'), mig('000010', 'release_v6.0')];
    assert.deepEqual(steps(plan(G, [], t('2'))), ['up 000001', 'up 000002']);
    assert.deepEqual(steps(plan(G, [], t('000002'))), ['up 000001', 'up 000002']);
    assert.deepEqual(steps(plan(G, [], t('000010_release_v6.0'))), ['up 000001', 'up 000002', 'up 000010']);
    assert.deepEqual(steps(plan(G, rows(...G), t('000001_init'))), ['down 000010', 'down 000002']);
  });

  test('a version two stems share (file renamed after it was applied) is AMBIGUOUS_REVISION; the stem resolves it', () => {
    const G = [mig('000001', 'init'), mig('000002', 'users')];
    const R = [row(G[0]!, 1), { ...row(G[1]!, 2), name: 'accounts' }];
    const msg = failure(() => plan(G, R, t('000002')), 'AMBIGUOUS_REVISION');
    assert.ok(msg.includes('000002_users') && msg.includes('000002_accounts'), msg);
    assert.deepEqual(steps(plan(G, R, t('000001_init'))), ['down 000002']);
  });

  test('a revision whose files are gone is still found by its record row', () => {
    const X = { revision: '20250105_000000', description: 'five' };
    const R = [...rows(M1, M2, M3, M4), row(X, 5)];
    assert.deepEqual(steps(plan(ALL, R, t('20250105_000000_five'))), []);
  });
});

describe('plan: refusals', () => {
  test('an edited applied file is CHECKSUM_MISMATCH naming the file', () => {
    const R = [row(M1, 1), row(M2, 2, { checksum: checksumOf('the old text') })];
    for (const target of ['head', '+1', '-1', 'base']) {
      const msg = failure(() => plan(ALL, R, t(target)), 'CHECKSUM_MISMATCH');
      assert.ok(msg.includes('sql/sqlite/20250102_000000_two.up.sql'), msg);
      assert.ok(!msg.includes('20250101_000000_one'), msg);
      assert.match(msg, /stamp/);
    }
  });

  test('every edited file is named', () => {
    const R = [row(M1, 1, { checksum: 'x' }), row(M2, 2, { checksum: 'y' })];
    const msg = failure(() => plan(ALL, R, t('head')), 'CHECKSUM_MISMATCH');
    assert.ok(msg.includes('20250101_000000_one.up.sql') && msg.includes('20250102_000000_two.up.sql'), msg);
  });

  test('a failed row is FAILED_MIGRATION naming the file, the statements run and the error', () => {
    const R = [
      row(M1, 1),
      row(M2, 2, {
        status: 'failed',
        statementsRun: 2,
        error: failedNote('up', 'relation "x" does not exist'),
        checksum: 'whatever',
      }),
    ];
    const msg = failure(() => plan(ALL, R, t('head')), 'FAILED_MIGRATION');
    assert.ok(msg.includes('sql/sqlite/20250102_000000_two.up.sql stopped part-way while applying'), msg);
    assert.ok(!msg.includes('.down.sql'), msg);
    assert.ok(msg.includes('relation "x" does not exist'), msg);
    assert.match(msg, /\b2 statement/);
    assert.match(msg, /stamp/);
  });

  test('a failed down is FAILED_MIGRATION naming the down file, and stamp -1 as the way out once it is finished', () => {
    const R = [
      row(M1, 1),
      row(M2, 2, { status: 'failed', statementsRun: 1, error: failedNote('down', 'index "x" does not exist') }),
    ];
    const msg = failure(() => plan(ALL, R, t('-1')), 'FAILED_MIGRATION');
    assert.ok(
      msg.includes(
        'sql/sqlite/20250102_000000_two.down.sql stopped part-way while rolling back (1 statement(s) ran): index "x" does not exist.',
      ),
      msg,
    );
    assert.match(msg, /`stamp -1` if all of it took effect/);
  });

  test("a failed up whose own error reads like the runner's prefix is still the up", () => {
    const R = [
      row(M1, 1),
      row(M2, 2, { status: 'failed', statementsRun: 0, error: failedNote('up', 'rolling back: t has duplicate rows') }),
    ];
    const msg = failure(() => plan(ALL, R, t('head')), 'FAILED_MIGRATION');
    assert.ok(
      msg.includes(
        '20250102_000000_two.up.sql stopped part-way while applying (0 statement(s) ran): rolling back: t has duplicate rows.',
      ),
      msg,
    );
  });

  test('failed rows written before the direction was recorded: the interrupted wording tells, other errors name both files', () => {
    const interruptedDown =
      'the runner stopped while rolling back this file outside a transaction: statements_run statements completed, and the next one may or may not have taken effect';
    const down = failure(
      () =>
        plan(ALL, [row(M1, 1), row(M2, 2, { status: 'failed', statementsRun: 1, error: interruptedDown })], t('head')),
      'FAILED_MIGRATION',
    );
    assert.ok(down.includes('20250102_000000_two.down.sql stopped part-way while rolling back'), down);
    const unknown = failure(
      () =>
        plan(
          ALL,
          [row(M1, 1), row(M2, 2, { status: 'failed', statementsRun: 1, error: 'no such index: nope' })],
          t('head'),
        ),
      'FAILED_MIGRATION',
    );
    assert.ok(
      unknown.includes(
        '20250102_000000_two.up.sql or sql/sqlite/20250102_000000_two.down.sql (the record, written by an older version, does not say which)',
      ),
      unknown,
    );
    assert.match(
      unknown,
      /for the up, `stamp 20250102_000000` if all of it is now in place.*for the down, `stamp -1` if all of it took effect/,
    );
  });

  test('applied files that are gone, older than local ones: MISSING_FILE naming them', () => {
    const gone = { revision: '20250101_120000', description: 'lost' };
    const R = [row(M1, 1), row(gone, 2), row(M2, 3)];
    for (const target of ['head', '-1', '20250102_000000']) {
      const msg = failure(() => plan(ALL, R, t(target)), 'MISSING_FILE');
      assert.ok(msg.includes('20250101_120000_lost'), msg);
      assert.match(msg, /stamp/);
    }
  });

  test('a missing revision older than every local one is MISSING_FILE too', () => {
    const gone = { revision: '20241231_000000', description: 'older' };
    const msg = failure(() => plan([M2, M3, M4], [row(gone, 1), row(M2, 2)], t('head')), 'MISSING_FILE');
    assert.ok(msg.includes('20241231_000000_older'), msg);
  });

  test('enforce: false skips every refusal', () => {
    const gone = { revision: '20250101_120000', description: 'lost' };
    const R = [
      row(M1, 1, { checksum: 'edited' }),
      row(gone, 2),
      row(M2, 3, { status: 'failed', statementsRun: 0, error: 'boom' }),
    ];
    const p = plan(ALL, R, t('head'), { enforce: false });
    assert.deepEqual(steps(p), ['up 20250103_000000', 'up 20250104_000000']);
  });

  test('enforce: false still cannot roll back a revision without files', () => {
    const gone = { revision: '20250101_120000', description: 'lost' };
    const msg = failure(() => plan(ALL, [row(M1, 1), row(gone, 2)], t('-1'), { enforce: false }), 'MISSING_FILE');
    assert.ok(msg.includes('20250101_120000_lost'), msg);
  });
});

describe('plan: the database is ahead of the folder', () => {
  const X5 = { revision: '20250105_000000', description: 'five' };
  const X6 = { revision: '20250106_000000', description: 'six' };

  test('head is a no-op with a DATABASE_AHEAD warning naming the revisions', () => {
    const p = plan(ALL, [...rows(M1, M2, M3, M4), row(X5, 5), row(X6, 6)], t('head'));
    assert.deepEqual(p.steps, []);
    assert.deepEqual(
      p.warnings.map((w) => w.code),
      ['DATABASE_AHEAD'],
    );
    assert.ok(p.warnings[0]?.message.includes('20250105_000000'), p.warnings[0]?.message);
    assert.ok(p.warnings[0]?.message.includes('20250106_000000'), p.warnings[0]?.message);
  });

  test('head plans only the local pending revisions', () => {
    const p = plan(ALL, [...rows(M1, M2), row(X5, 3)], t('head'));
    assert.deepEqual(steps(p), ['up 20250103_000000', 'up 20250104_000000']);
    assert.ok(p.warnings.some((w) => w.code === 'DATABASE_AHEAD'));
  });

  test('rolling back a revision of the newer release is MISSING_FILE', () => {
    const msg = failure(() => plan(ALL, [...rows(M1, M2, M3, M4), row(X5, 5)], t('-1')), 'MISSING_FILE');
    assert.ok(msg.includes('20250105_000000_five'), msg);
  });

  test('assess marks it ahead', () => {
    const a = assess(ALL, [...rows(M1, M2, M3, M4), row(X5, 5)]);
    assert.equal(a.ahead, true);
    assert.deepEqual(
      a.missing.map((r) => r.revision),
      ['20250105_000000'],
    );
    assert.equal(assess(ALL, rows(M1, M2)).ahead, false);
  });
});

describe('appliedAfter', () => {
  test('rollback removes the rolled-back revisions, keeping application order', () => {
    const R = [row(M1, 1), row(M3, 2), row(M2, 3)];
    const p = plan(ALL, R, t('-1'));
    assert.deepEqual(
      appliedAfter(ALL, R, p.steps).map((m) => m.revision),
      ['20250101_000000', '20250103_000000'],
    );
  });

  test('applied revisions come after the recorded ones', () => {
    const R = rows(M1, M2, M4);
    const p = plan(ALL, R, t('head'));
    assert.deepEqual(
      appliedAfter(ALL, R, p.steps).map((m) => m.revision),
      ['20250101_000000', '20250102_000000', '20250104_000000', '20250103_000000'],
    );
  });

  test('a revision target that rolls back and applies', () => {
    const R = rows(M1, M2, M4);
    const p = plan(ALL, R, t('20250103_000000'));
    assert.deepEqual(appliedAfter(ALL, R, p.steps), [M1, M2, M3]);
  });

  test('base leaves nothing', () => {
    const R = rows(M1, M2);
    assert.deepEqual(appliedAfter(ALL, R, plan(ALL, R, t('base')).steps), []);
  });
});

describe('plan: a revision by its description alone', () => {
  test('one migration with that description: accepted, as its version would be', () => {
    assert.deepEqual(steps(plan(ALL, [], t('two'))), ['up 20250101_000000', 'up 20250102_000000']);
    assert.deepEqual(steps(plan(ALL, rows(...ALL), t('three'))), ['down 20250104_000000']);
  });

  test('several with that description: AMBIGUOUS_REVISION listing the candidates', () => {
    const twice = [M1, mig('20250102_000000', 'add_user_email'), mig('20250105_000000', 'add_user_email')];
    const msg = failure(() => plan(twice, [], t('add_user_email')), 'AMBIGUOUS_REVISION');
    assert.ok(msg.includes('20250102_000000_add_user_email') && msg.includes('20250105_000000_add_user_email'), msg);
  });

  test('a description that is also a version is read as the version', () => {
    const odd = [mig('000001', 'init'), mig('000002', '1')];
    assert.deepEqual(steps(plan(odd, [], t('1'))), ['up 000001']);
  });
});

describe('plan: the advice for an edited applied file', () => {
  test('says both ways out: stamp to accept it, or stamp -1 then head when the edit never ran', () => {
    const R = [row(M1, 1), row(M2, 2, { checksum: checksumOf('') })];
    const msg = failure(() => plan(ALL, R, t('head')), 'CHECKSUM_MISMATCH');
    assert.match(msg, /already has what the edited file says, review and run `stamp 20250102_000000`/);
    assert.match(
      msg,
      /never ran .* run `stamp -1 --yes` to forget 20250102_000000 without running anything, then `head`/,
    );
  });

  test('an edited file with later revisions after it: roll those back first', () => {
    const R = [row(M1, 1, { checksum: checksumOf('') }), row(M2, 2), row(M3, 3)];
    const msg = failure(() => plan(ALL, R, t('head')), 'CHECKSUM_MISMATCH');
    assert.match(msg, /`-2 --yes` \(roll back what came after it\), then `stamp -1 --yes` to forget 20250101_000000/);
  });

  test('the rollback it names is let through the edit; one that would run the edited file is not', () => {
    const R = [row(M1, 1, { checksum: checksumOf('') }), row(M2, 2), row(M3, 3)];
    assert.deepEqual(steps(plan(ALL, R, t('-2'))), ['down 20250103_000000', 'down 20250102_000000']);
    failure(() => plan(ALL, R, t('-3')), 'CHECKSUM_MISMATCH');
    failure(() => plan(ALL, R, t('+1')), 'CHECKSUM_MISMATCH');
    failure(() => plan(ALL, [row(M1, 1, { checksum: checksumOf('') })], t('head')), 'CHECKSUM_MISMATCH');
  });
});

describe('plan: an up file that holds only comments', () => {
  const empty = (m: Migration, text: string): Migration => ({ ...m, up: file(m.up.path, text) });

  test('applying it is refused: EMPTY_UP (exit 2) naming the file, nothing planned', () => {
    const E = empty(M2, '-- write the migration here\n/* and\n here */\n\n');
    const msg = failure(() => plan([M1, E], [], t('head')), 'EMPTY_UP');
    assert.match(msg, /^sql\/sqlite\/20250102_000000_two\.up\.sql holds no statement, only comments/);
    assert.match(msg, /nothing was applied/);
    // Only a plan that would apply it: the revisions before it can still be applied.
    assert.deepEqual(steps(plan([M1, E], [], t('+1'))), ['up 20250101_000000']);
  });

  test('a file with a statement after its comments, or an empty down, does not', () => {
    const p = plan(
      [empty(M1, '-- add t\nCREATE TABLE t (id int);\n'), { ...M2, down: file(M2.down.path, '') }],
      [],
      t('head'),
    );
    assert.deepEqual(p.warnings, []);
  });
});
