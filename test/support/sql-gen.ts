/**
 * Generators of migration files for the lexer's proof (test/lexer-proof.test.ts): valid SQL built
 * from statements with the hard parts of each dialect's lexer mixed in — quotes and doubled
 * quotes, `E''` escapes, dollar quotes, nested comments, comments holding `;`, BEGIN/END/CASE as
 * names, trigger and BEGIN ATOMIC bodies, Unicode (astral too) and CRLF line ends.
 *
 * PostgreSQL files need only be valid to the parser (names need not exist); SQLite files must run,
 * in order, on an empty database, so their statements only touch the tables they create.
 */
import fc from 'fast-check';
import { isTransactionControl } from '../../runner/core/split.ts';

type Arb = fc.Arbitrary<string>;
type Part = string | Arb;

/** The runner's verdict on one statement as the lexer cut it: does it begin or end a transaction? */
export function transactionControlIn(statementSql: string, dialect: 'postgres' | 'sqlite'): boolean {
  return isTransactionControl(statementSql, dialect);
}

/** A keyword in upper, lower or mixed case. */
function kw(word: string): Arb {
  const mixed = word.charAt(0).toUpperCase() + word.slice(1).toLowerCase();
  return fc.constantFrom(word.toUpperCase(), word.toLowerCase(), mixed);
}

const toArb = (p: Part): Arb => (typeof p === 'string' ? fc.constant(p) : p);

/** Pieces of text that lexers trip on; each container below drops the ones it cannot hold. */
const PIECES = [
  ';',
  ' ',
  'a',
  '--',
  '/*',
  '*/',
  "'",
  '"',
  '`',
  '[',
  ']',
  '$',
  '$$',
  '$q$',
  '\\',
  '\n',
  '(',
  ')',
  'BEGIN',
  'end',
  'Case',
  'é',
  '𝄞',
  '🔥',
];

function textOf(pieces: readonly string[], extra: readonly string[] = [], maxLength = 6): Arb {
  return fc.array(fc.constantFrom(...pieces, ...extra), { maxLength }).map((a) => a.join(''));
}

const without = (...out: string[]) => PIECES.filter((p) => !out.some((o) => p.includes(o)));

/** Whitespace or comments between two tokens: never empty. */
function gap(dialect: 'postgres' | 'sqlite'): Arb {
  const lineComment = textOf(without('\n')).map((t) => `--${t}\n`);
  const block =
    dialect === 'postgres'
      ? fc
          .tuple(textOf(without('/*', '*/')), fc.option(textOf(without('/*', '*/'))))
          .map(([a, inner]) => (inner === null ? `/*${a}*/` : `/*${a}/* ${inner} */${a}*/`))
      : textOf(without('*/'))
          .filter((t) => !t.includes('*/'))
          .map((t) => `/*${t}*/`);
  const ws = fc.constantFrom(' ', '\n', '\t', '  ', '\n\n', ' \r\n');
  return fc.oneof(
    { arbitrary: ws, weight: 6 },
    { arbitrary: fc.tuple(ws, lineComment).map(([w, c]) => w + c), weight: 1 },
    { arbitrary: fc.tuple(ws, block, ws).map(([a, c, b]) => a + c + b), weight: 1 },
  );
}

/** Tokens joined by generated gaps. */
function words(dialect: 'postgres' | 'sqlite', ...parts: Part[]): Arb {
  const g = gap(dialect);
  return fc.tuple(...parts.map(toArb), fc.array(g, { minLength: parts.length, maxLength: parts.length })).map((t) => {
    const gaps = t[t.length - 1] as string[];
    return (t.slice(0, -1) as string[]).map((w, k) => (k === 0 ? w : gaps[k - 1] + w)).join('');
  });
}

// ---- literals and names shared by both dialects ----

const plainString = textOf(without("'"), ["''"]).map((t) => `'${t}'`);
const doubleQuoted = textOf(without('"'), ['""'])
  .filter((t) => t.length > 0)
  .map((t) => `"${t}"`);

// ---- PostgreSQL ----

const pgEscapeString = fc
  .tuple(fc.constantFrom('E', 'e'), textOf(without("'", '\\'), ["\\'", '\\\\', "''", '\\n', '\\;']))
  .map(([e, t]) => `${e}'${t}'`);
const pgDollar = fc.oneof(
  textOf(without('$')).map((t) => `$$${t}$$`),
  fc
    .tuple(fc.constantFrom('body', '_x', 'é1', 'T'), textOf(PIECES))
    .filter(([tag, t]) => !`${t}$`.includes(`$${tag}$`))
    .map(([tag, t]) => `$${tag}$${t}$${tag}$`),
);
const pgLiteral = fc.oneof(
  plainString,
  pgEscapeString,
  pgDollar,
  fc.constantFrom('1', '$1', "U&'d\\0061t'", "B'01'", "X'fF'", "N'n;'", '2*/*c*/3', 'NULL'),
);
const pgName = fc.oneof(
  fc.constantFrom('t', 'begin', 'atomic', 'a$b', 'x$$', 'é🔥', '"end"', '"case"', '"a;b"', 'Begin'),
  doubleQuoted,
);
const pgCase = words(
  'postgres',
  kw('case'),
  kw('when'),
  pgLiteral,
  kw('then'),
  pgLiteral,
  kw('else'),
  pgName,
  kw('end'),
);
const pgText = fc.oneof(plainString, pgEscapeString, pgDollar, fc.constant('NULL'));
const pgExpr = fc.oneof(
  pgLiteral,
  pgName,
  pgCase,
  pgCase.map((c) => `(${c})`),
);

const pgTransaction = fc.oneof(
  fc.constantFrom(
    'BEGIN',
    'begin work',
    'BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    'START TRANSACTION READ ONLY',
    'COMMIT',
    'commit and chain',
    'END',
    'end transaction',
    'ROLLBACK',
    'ABORT',
    'SAVEPOINT s',
    'RELEASE SAVEPOINT s',
    'release s',
    'ROLLBACK TO s',
    'ROLLBACK TRANSACTION TO SAVEPOINT s',
    'ROLLBACK WORK TO SAVEPOINT s',
    "PREPARE TRANSACTION 'x;'",
    "COMMIT PREPARED 'x'",
    "ROLLBACK PREPARED 'x'",
  ),
  words('postgres', kw('rollback'), kw('to'), 's'),
  words('postgres', kw('begin'), kw('isolation'), kw('level'), kw('read'), kw('committed')),
);

const pgAtomicBody = fc
  .array(
    fc.oneof(
      words('postgres', kw('select'), pgExpr),
      words(
        'postgres',
        kw('insert'),
        kw('into'),
        pgName,
        kw('values'),
        pgExpr.map((e) => `(${e})`),
      ),
    ),
    { maxLength: 3 },
  )
  .map((stmts) => stmts.map((s) => `${s};\n`).join(''));

const pgStatement: Arb = fc.oneof(
  { arbitrary: words('postgres', kw('select'), pgExpr, kw('as'), pgName), weight: 3 },
  { arbitrary: pgTransaction, weight: 2 },
  {
    arbitrary: words(
      'postgres',
      kw('create'),
      kw('table'),
      pgName,
      fc.tuple(pgName, pgName).map(([a, b]) => `(${a} int, ${b} text)`),
    ),
    weight: 1,
  },
  {
    arbitrary: words(
      'postgres',
      kw('insert'),
      kw('into'),
      pgName,
      kw('values'),
      fc.tuple(pgExpr, pgExpr).map(([a, b]) => `(${a}, ${b})`),
    ),
    weight: 2,
  },
  {
    arbitrary: words(
      'postgres',
      kw('create'),
      kw('function'),
      'f()',
      kw('returns'),
      'int',
      kw('language'),
      'plpgsql',
      kw('as'),
      pgDollar,
    ),
    weight: 1,
  },
  { arbitrary: words('postgres', kw('do'), pgDollar), weight: 1 },
  {
    arbitrary: words(
      'postgres',
      fc.constantFrom('CREATE FUNCTION f() RETURNS int LANGUAGE sql', 'create or replace procedure p() language sql'),
      kw('begin'),
      kw('atomic'),
      pgAtomicBody,
      kw('end'),
    ),
    weight: 2,
  },
  { arbitrary: words('postgres', 'CREATE FUNCTION g() RETURNS int LANGUAGE sql', kw('return'), pgExpr), weight: 1 },
  { arbitrary: words('postgres', kw('select'), '*', kw('from'), pgName, pgName), weight: 1 },
  {
    arbitrary: words(
      'postgres',
      'CREATE RULE r AS ON INSERT TO t DO ALSO',
      fc.tuple(pgExpr, pgExpr).map(([a, b]) => `(SELECT ${a}; SELECT ${b})`),
    ),
    weight: 1,
  },
  {
    arbitrary: words('postgres', kw('prepare'), 'q(int)', kw('as'), kw('select'), '$1', kw('from'), pgName),
    weight: 1,
  },
  { arbitrary: words('postgres', kw('comment'), kw('on'), kw('table'), pgName, kw('is'), pgText), weight: 1 },
);

/** A PostgreSQL file as written: valid to PostgreSQL's parser, CRLF line ends possible. */
export const pgFile: Arb = file('postgres', pgStatement);

// ---- SQLite ----

const sqString = textOf(without("'"), ["''"]).map((t) => `'${t}'`);
const sqLiteral = fc.oneof(sqString, fc.constantFrom('1', 'NULL', "X'fF'", '2.5', '-3'));
/** A column of the `base` and `log` tables, in any of SQLite's quotings. */
const sqColumn = fc.constantFrom(
  'begin',
  'BEGIN',
  '"begin"',
  '[begin]',
  'end',
  'End',
  '`end`',
  '"case"',
  '[case]',
  '`case`',
  '"a;b"',
  '[a;b]',
  '`a;b`',
  'é🔥',
);
const sqCaseOf = (column: Arb) =>
  words('sqlite', kw('case'), kw('when'), column, kw('then'), sqLiteral, kw('else'), sqLiteral, kw('end'));
const sqCase = sqCaseOf(sqColumn);
const sqExpr = fc.oneof(
  sqLiteral,
  sqColumn,
  sqCase,
  sqCase.map((c) => `(${c})`),
);
const newColumn = sqColumn.map((c) => `new.${c}`);
/** Trigger conditions may name only the new row's columns. */
const sqWhen = fc.oneof(
  newColumn.map((c) => `${c} IS NULL`),
  sqCaseOf(newColumn),
);

const COLUMNS = '(begin, end, "case", "a;b", é🔥)';

/** VALUES may name no column; a trigger's may name the new row's. */
const sqValue = fc.oneof(sqLiteral, sqCaseOf(sqLiteral));
const sqNewValue = fc.oneof(sqValue, newColumn, sqCaseOf(newColumn));
const sqInsert = (table: string, value: Arb) =>
  words(
    'sqlite',
    kw('insert'),
    kw('into'),
    table,
    fc.tuple(sqColumn, value).map(([c, e]) => `(${c}) VALUES (${e})`),
  );
const sqTriggerStatement = fc.oneof(
  sqInsert('log', sqNewValue),
  words('sqlite', kw('update'), 'log', kw('set'), sqColumn, '=', newColumn, kw('where'), sqColumn, '=', sqExpr),
  words('sqlite', kw('delete'), kw('from'), 'log', kw('where'), sqColumn, kw('is'), sqExpr),
  words('sqlite', kw('select'), sqExpr, kw('from'), 'log'),
);
const sqTrigger = fc
  .tuple(
    fc.constantFrom('', 'TEMP ', 'temporary '),
    fc.constantFrom('tr§', '"end§"', '[begin§]', 'IF NOT EXISTS "case§"'),
    fc.constantFrom('AFTER INSERT ON base', 'before insert on base', 'AFTER UPDATE OF end, begin ON base'),
    fc.option(sqWhen),
    fc.array(sqTriggerStatement, { minLength: 1, maxLength: 3 }),
  )
  .chain(([temp, name, event, when, body]) =>
    words(
      'sqlite',
      `CREATE ${temp}TRIGGER ${name}`,
      event,
      when === null ? '' : `WHEN ${when}`,
      kw('begin'),
      body.map((s) => `${s};\n`).join(''),
      kw('end'),
    ),
  );
const sqTransactionBlock = fc
  .tuple(
    fc.oneof(
      fc.constantFrom('BEGIN', 'begin deferred', 'BEGIN IMMEDIATE TRANSACTION', 'Begin Exclusive'),
      words('sqlite', kw('begin'), kw('transaction')),
    ),
    sqInsert('base', sqValue),
    fc.oneof(
      fc.constantFrom('ROLLBACK TO s', 'rollback transaction to savepoint s', 'RELEASE s', 'release savepoint s'),
      words('sqlite', kw('rollback'), kw('to'), 's'),
    ),
    fc.constantFrom('COMMIT', 'END', 'end transaction', 'ROLLBACK', 'commit transaction'),
  )
  .map(([begin, insert, inner, end]) => [begin, 'SAVEPOINT s', insert, inner, end]);

const sqUnit: fc.Arbitrary<string[]> = fc.oneof(
  { arbitrary: sqInsert('base', sqValue).map((s) => [s]), weight: 3 },
  {
    arbitrary: words('sqlite', kw('select'), sqExpr, kw('as'), sqColumn, kw('from'), 'base').map((s) => [s]),
    weight: 2,
  },
  { arbitrary: sqTrigger.map((s) => [s, 'INSERT INTO base DEFAULT VALUES']), weight: 3 },
  { arbitrary: sqTransactionBlock, weight: 1 },
  { arbitrary: words('sqlite', kw('update'), 'base', kw('set'), sqColumn, '=', sqExpr).map((s) => [s]), weight: 1 },
  {
    arbitrary: words('sqlite', kw('create'), kw('view'), 'v§', kw('as'), kw('select'), sqExpr, kw('from'), 'base').map(
      (s) => [s],
    ),
    weight: 1,
  },
);

/** A SQLite file as written that runs, statement by statement, on an empty database. */
export const sqliteFile: Arb = fc
  .tuple(
    fc.constantFrom(COLUMNS, '([begin], `end`, [case], [a;b], "é🔥")', '("begin", "end", "case", `a;b`, é🔥)'),
    fc.array(sqUnit, { maxLength: 6 }),
  )
  .chain(([columns, units]) =>
    file('sqlite', fc.constant(''), [
      `CREATE TABLE base ${columns}`,
      `CREATE TABLE log ${COLUMNS}`,
      ...units.flat().map((s, k) => s.replace('§', String(k))),
    ]),
  );

// ---- files ----

/**
 * Statements joined into a file: each followed by `;` (the last one possibly not), gaps of
 * whitespace and comments between, a stray empty `;` now and then, and CRLF line ends in some.
 */
function file(dialect: 'postgres' | 'sqlite', statement: Arb, fixed?: string[]): Arb {
  const g = fc.oneof(
    fc.constant('\n'),
    fc.constant(''),
    gap(dialect),
    gap(dialect).map((s) => `;${s}`),
  );
  const statements = fixed === undefined ? fc.array(statement, { minLength: 1, maxLength: 8 }) : fc.constant(fixed);
  // A file may end in a line comment without its newline; SQLite also lets a block comment run to the end.
  const tails = ['', '\n', '\n-- last; line', ...(dialect === 'sqlite' ? ['\n/* open; comment'] : [])];
  return fc
    .tuple(
      statements,
      fc.array(g, { minLength: 10, maxLength: 10 }),
      fc.boolean(),
      fc.boolean(),
      fc.constantFrom(...tails),
    )
    .map(([list, gaps, lastOpen, crlf, tail]) =>
      list
        .map((s, k) => `${gaps[k % gaps.length]}${s}${lastOpen && k === list.length - 1 ? '' : ';'}`)
        .join('')
        .concat(gaps[9] ?? '', tail)
        .replace(/\n/g, crlf ? '\r\n' : '\n'),
    );
}
