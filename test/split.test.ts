import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  firstTransactionControl,
  holdsStatement,
  isTransactionControl,
  splitStatements,
} from '../runner/core/split.ts';
import type { Dialect } from '../runner/core/dialect.ts';
import { codePointOffsetToIndex, lineColumn } from '../runner/core/position.ts';

interface Case {
  name: string;
  dialect: Dialect;
  text: string;
  /** [offset, sql] of each statement, in order. */
  want: Array<[number, string]>;
}

const pgFunction = `CREATE FUNCTION f() RETURNS int AS $$
BEGIN
  PERFORM 1; -- ;
  RETURN 2;
END;
$$ LANGUAGE plpgsql;`;

const pgTagged = `CREATE OR REPLACE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $body$
BEGIN
  RETURN $$it's; $$ || $x$;$x$;
END
$body$;`;

const sqliteTrigger = `CREATE TRIGGER audit AFTER UPDATE ON users
WHEN CASE WHEN new.a THEN 1 ELSE 0 END
BEGIN
  INSERT INTO log VALUES (CASE new.kind WHEN 'a;' THEN 'x' ELSE 'y' END);
  UPDATE users SET n = n + 1 WHERE id = new.id;
END;`;

const sqliteTempTrigger = `create temp trigger t before delete on a begin
  select case when old.id > 0 then raise(abort, 'no; never') end;
  delete from b where a_id = old.id;
end;`;

const pgAtomic = `CREATE PROCEDURE p() LANGUAGE sql
BEGIN ATOMIC
  INSERT INTO t VALUES (1);
  SELECT CASE WHEN 1 > 0 THEN 'a' ELSE 'b' END;
END;`;

/** Issue #15.3: a trigger body that names columns begin, end and case. */
const sqliteKeywordColumns = `CREATE TRIGGER tr AFTER INSERT ON t BEGIN
  UPDATE t SET begin = 1, "end" = NEW.end WHERE id = NEW.id AND NEW.case = 0;
  UPDATE t SET end = 2 WHERE begin = 1;
END;`;

const pgAtomicNames = `CREATE FUNCTION f() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT t.end AS case FROM t WHERE t.case = 1;
  SELECT begin FROM t;
END;`;

const cases: Case[] = [
  {
    name: 'pg: dollar-quoted function with semicolons, then another statement',
    dialect: 'postgres',
    text: `${pgFunction}\nSELECT f();\n`,
    want: [
      [0, pgFunction],
      [pgFunction.length + 1, 'SELECT f();'],
    ],
  },
  {
    name: 'pg: tagged $body$ holding $$…$$ and $x$…$x$ with semicolons',
    dialect: 'postgres',
    text: `-- g\n${pgTagged}\n`,
    want: [[5, pgTagged]],
  },
  {
    name: 'pg: $$ holding a tagged quote, and tags compared exactly',
    dialect: 'postgres',
    text: 'SELECT $$ $a$ ; $a$ ; $$; SELECT $A$ $a$; $A$;',
    want: [
      [0, 'SELECT $$ $a$ ; $a$ ; $$;'],
      [26, 'SELECT $A$ $a$; $A$;'],
    ],
  },
  {
    name: 'pg: $1 is a parameter and a$b an identifier, not dollar quotes',
    dialect: 'postgres',
    text: 'PREPARE q AS SELECT $1; SELECT a$b$ FROM t$; SELECT 2;',
    want: [
      [0, 'PREPARE q AS SELECT $1;'],
      [24, 'SELECT a$b$ FROM t$;'],
      [45, 'SELECT 2;'],
    ],
  },
  {
    name: 'pg: nested block comments',
    dialect: 'postgres',
    text: '/* a /* b; */ still; comment */ SELECT 1 /* x /* ; */ ; */ + 1; SELECT 2;',
    want: [
      [32, 'SELECT 1 /* x /* ; */ ; */ + 1;'],
      [64, 'SELECT 2;'],
    ],
  },
  {
    name: 'sqlite: block comments do not nest',
    dialect: 'sqlite',
    text: '/* a /* b */ SELECT 1; */ SELECT 2;',
    want: [
      [13, 'SELECT 1;'],
      [23, '*/ SELECT 2;'],
    ],
  },
  {
    name: 'strings holding --, ; and /*',
    dialect: 'postgres',
    text: "INSERT INTO t VALUES ('-- no; /* not a comment', 'it''s; ok');\nSELECT ';';",
    want: [
      [0, "INSERT INTO t VALUES ('-- no; /* not a comment', 'it''s; ok');"],
      [63, "SELECT ';';"],
    ],
  },
  {
    name: "pg: E'' strings with backslash escapes",
    dialect: 'postgres',
    text: "SELECT E'\\'; still string', e'a\\\\'; SELECT 'b\\'; SELECT 3;",
    want: [
      [0, "SELECT E'\\'; still string', e'a\\\\';"],
      // A plain string has no backslash escapes: 'b\' ends at its second quote.
      [36, "SELECT 'b\\';"],
      [49, 'SELECT 3;'],
    ],
  },
  {
    name: 'sqlite: quoted identifiers holding ;',
    dialect: 'sqlite',
    text: 'CREATE TABLE "a;""b" (`c;``d` INT, [e;f] TEXT); SELECT 1;',
    want: [
      [0, 'CREATE TABLE "a;""b" (`c;``d` INT, [e;f] TEXT);'],
      [48, 'SELECT 1;'],
    ],
  },
  {
    name: 'pg: [ is a subscript, not a quote',
    dialect: 'postgres',
    text: 'SELECT a[1]; SELECT "x;y"[2];',
    want: [
      [0, 'SELECT a[1];'],
      [13, 'SELECT "x;y"[2];'],
    ],
  },
  {
    name: 'sqlite: trigger with several statements and CASE…END in WHEN and body',
    dialect: 'sqlite',
    text: `${sqliteTrigger}\nSELECT 1;`,
    want: [
      [0, sqliteTrigger],
      [sqliteTrigger.length + 1, 'SELECT 1;'],
    ],
  },
  {
    name: 'sqlite: lower-case temp trigger',
    dialect: 'sqlite',
    text: `${sqliteTempTrigger}\n`,
    want: [[0, sqliteTempTrigger]],
  },
  {
    name: 'sqlite: file with its own PRAGMA and BEGIN/COMMIT',
    dialect: 'sqlite',
    text: `-- migrate:no-transaction
PRAGMA foreign_keys=OFF;
BEGIN;
CREATE TABLE new_t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO new_t SELECT id, name FROM t;
DROP TABLE t;
ALTER TABLE new_t RENAME TO t;
COMMIT;
PRAGMA foreign_keys=ON;
`,
    want: [
      [26, 'PRAGMA foreign_keys=OFF;'],
      [51, 'BEGIN;'],
      [58, 'CREATE TABLE new_t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);'],
      [123, 'INSERT INTO new_t SELECT id, name FROM t;'],
      [165, 'DROP TABLE t;'],
      [179, 'ALTER TABLE new_t RENAME TO t;'],
      [210, 'COMMIT;'],
      [218, 'PRAGMA foreign_keys=ON;'],
    ],
  },
  {
    name: 'sqlite: BEGIN TRANSACTION / BEGIN IMMEDIATE / END are plain statements',
    dialect: 'sqlite',
    text: 'BEGIN TRANSACTION; SELECT 1; END; BEGIN IMMEDIATE; SELECT 2; COMMIT;',
    want: [
      [0, 'BEGIN TRANSACTION;'],
      [19, 'SELECT 1;'],
      [29, 'END;'],
      [34, 'BEGIN IMMEDIATE;'],
      [51, 'SELECT 2;'],
      [61, 'COMMIT;'],
    ],
  },
  {
    name: 'pg: BEGIN ATOMIC procedure with CASE…END, between transaction statements',
    dialect: 'postgres',
    text: `BEGIN;\n${pgAtomic}\nCOMMIT;`,
    want: [
      [0, 'BEGIN;'],
      [7, pgAtomic],
      [7 + pgAtomic.length + 1, 'COMMIT;'],
    ],
  },
  {
    name: 'pg: one-line BEGIN ATOMIC function',
    dialect: 'postgres',
    text: 'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT f();',
    want: [
      [0, 'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;'],
      [83, 'SELECT f();'],
    ],
  },
  {
    name: 'pg: CREATE INDEX CONCURRENTLY file',
    dialect: 'postgres',
    text: `-- migrate:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);
CREATE INDEX CONCURRENTLY users_name ON users (lower(name));
`,
    want: [
      [26, 'CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);'],
      [96, 'CREATE INDEX CONCURRENTLY users_name ON users (lower(name));'],
    ],
  },
  {
    name: 'pg: ; inside parentheses does not split (CREATE RULE … DO ( a; b ))',
    dialect: 'postgres',
    text: 'CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); SELECT 1;',
    want: [
      [0, 'CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b);'],
      [62, 'SELECT 1;'],
    ],
  },
  {
    name: 'pg: comments and whitespace only',
    dialect: 'postgres',
    text: '-- down: nothing\n/* a /* b */ */\n\n',
    want: [],
  },
  { name: 'sqlite: comments only', dialect: 'sqlite', text: '-- only a note', want: [] },
  { name: 'empty text', dialect: 'sqlite', text: '', want: [] },
  {
    name: 'empty statements are dropped',
    dialect: 'sqlite',
    text: ';;\n; SELECT 1;; ;',
    want: [[5, 'SELECT 1;']],
  },
  {
    name: 'trailing statement without ; stops at its last token',
    dialect: 'postgres',
    text: 'SELECT 1;\nSELECT 2 -- two\n  /* end */\n\n',
    want: [
      [0, 'SELECT 1;'],
      [10, 'SELECT 2'],
    ],
  },
  {
    name: 'leading comments are skipped; comments inside a statement are kept',
    dialect: 'sqlite',
    text: '-- header\n/* block */  \n  CREATE TABLE t ( -- the key\n  id INT /* ; */\n); -- after\nSELECT 1;',
    want: [
      [26, 'CREATE TABLE t ( -- the key\n  id INT /* ; */\n);'],
      [83, 'SELECT 1;'],
    ],
  },
  {
    name: 'offsets are UTF-16 indices after astral characters',
    dialect: 'postgres',
    text: "SELECT '🔥;'; SELECT 2;",
    want: [
      [0, "SELECT '🔥;';"],
      [14, 'SELECT 2;'],
    ],
  },
  {
    name: 'unterminated string swallows the rest',
    dialect: 'sqlite',
    text: "SELECT 1; SELECT 'oops; SELECT 2;\n",
    want: [
      [0, 'SELECT 1;'],
      [10, "SELECT 'oops; SELECT 2;\n"],
    ],
  },
  {
    name: 'sqlite: columns named begin, end and case inside a trigger open and close nothing',
    dialect: 'sqlite',
    text: `${sqliteKeywordColumns}\nCOMMIT;\nCREATE TABLE t2 (x int);`,
    want: [
      [0, sqliteKeywordColumns],
      [sqliteKeywordColumns.length + 1, 'COMMIT;'],
      [sqliteKeywordColumns.length + 9, 'CREATE TABLE t2 (x int);'],
    ],
  },
  {
    name: 'sqlite: a trigger whose WHEN names NEW.begin',
    dialect: 'sqlite',
    text: 'CREATE TRIGGER tr AFTER UPDATE ON t WHEN NEW.begin > 0 BEGIN SELECT 1; END; COMMIT;',
    want: [
      [0, 'CREATE TRIGGER tr AFTER UPDATE ON t WHEN NEW.begin > 0 BEGIN SELECT 1; END;'],
      [76, 'COMMIT;'],
    ],
  },
  {
    name: 'pg: end and case used as names inside BEGIN ATOMIC close nothing',
    dialect: 'postgres',
    text: `${pgAtomicNames}\nCOMMIT;`,
    want: [
      [0, pgAtomicNames],
      [pgAtomicNames.length + 1, 'COMMIT;'],
    ],
  },
];

for (const c of cases) {
  test(`splitStatements: ${c.name}`, () => {
    assert.ok(!c.text.includes('\r'), 'texts reach the splitter normalised to LF');
    const got = splitStatements(c.text, c.dialect).map((s): [number, string] => [s.offset, s.sql]);
    assert.deepEqual(got, c.want);
    assertInvariants(c.text, c.dialect);
  });
}

/** What every split must satisfy whatever the input: statements are exact, ordered slices. */
function assertInvariants(text: string, dialect: Dialect): void {
  let last = -1;
  const statements = splitStatements(text, dialect);
  for (const [k, s] of statements.entries()) {
    assert.ok(text.slice(s.offset).startsWith(s.sql), `${JSON.stringify(s)} is a slice of the text`);
    assert.ok(s.offset > last, 'offsets rise');
    assert.ok(s.sql.length > 0 && s.sql !== ';');
    assert.doesNotMatch(s.sql, /^(\s|--|\/\*)/, 'starts at a token');
    // Only the last may lack its `;` (and may end in an unterminated string's whitespace).
    if (k < statements.length - 1) assert.ok(s.sql.endsWith(';'), 'ends at its ;');
    last = s.offset + s.sql.length - 1;
  }
  // The shortcuts a step takes for a file that runs whole answer as the split does.
  assert.equal(holdsStatement(text, dialect), statements.length > 0, 'holdsStatement');
  const control = statements.find((s) => isTransactionControl(s.sql, dialect));
  assert.deepEqual(firstTransactionControl(text, dialect), control, 'firstTransactionControl');
}

test('splitStatements: invariants hold on random text made of tricky characters', () => {
  const alphabet = [
    "'",
    '"',
    '`',
    '[',
    ']',
    '$',
    '$$',
    '$a$',
    'E',
    ';',
    '-',
    '/',
    '*',
    '\\',
    '\n',
    ' ',
    'a',
    '1',
    '(',
    ')',
    'BEGIN',
    'ATOMIC',
    'CASE',
    'END',
    'CREATE TRIGGER',
    'COMMIT',
    'ROLLBACK TO',
    // Upper-cased by JavaScript, the long s reads as START: the verdict's own rule, kept by the shortcut.
    'ſtart ',
    '🔥',
  ];
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let round = 0; round < 2000; round++) {
    let text = '';
    const length = Math.floor(random() * 40);
    for (let k = 0; k < length; k++) text += alphabet[Math.floor(random() * alphabet.length)];
    assertInvariants(text, 'postgres');
    assertInvariants(text, 'sqlite');
  }
});

test('splitStatements: many statements in one large text', () => {
  const one = "INSERT INTO t VALUES (1, 'a;b', $$c;d$$); -- note;\n";
  const text = one.repeat(20_000);
  const got = splitStatements(text, 'postgres');
  assert.equal(got.length, 20_000);
  assert.equal(got[19_999]?.offset, one.length * 19_999);
  assert.equal(got[19_999]?.sql, one.slice(0, one.indexOf(' --')));
});

test('lineColumn: lines and code-point columns', () => {
  const text = 'SELECT 1;\n🔥🔥 x\n\nlast';
  assert.deepEqual(lineColumn(text, 0), { line: 1, column: 1 });
  assert.deepEqual(lineColumn(text, 9), { line: 1, column: 10 }); // the LF itself
  assert.deepEqual(lineColumn(text, 10), { line: 2, column: 1 }); // first 🔥
  assert.deepEqual(lineColumn(text, 12), { line: 2, column: 2 }); // second 🔥
  assert.deepEqual(lineColumn(text, 15), { line: 2, column: 4 }); // x
  assert.deepEqual(lineColumn(text, 17), { line: 3, column: 1 }); // empty line
  assert.deepEqual(lineColumn(text, 18), { line: 4, column: 1 }); // l
  assert.deepEqual(lineColumn(text, text.length), { line: 4, column: 5 });
  assert.deepEqual(lineColumn(text, 999), { line: 4, column: 5 });
});

test('codePointOffsetToIndex: PostgreSQL position (1-based code points) → string index', () => {
  const text = 'SELECT 1;\n🔥🔥 emial\n';
  assert.equal(codePointOffsetToIndex(text, 1), 0);
  assert.equal(codePointOffsetToIndex(text, 11), 10); // first 🔥
  assert.equal(codePointOffsetToIndex(text, 12), 12); // second 🔥
  assert.equal(codePointOffsetToIndex(text, 14), 15); // e of emial
  assert.equal(text.slice(15, 20), 'emial');
  assert.deepEqual(lineColumn(text, codePointOffsetToIndex(text, 14)), { line: 2, column: 4 });
  assert.equal(codePointOffsetToIndex(text, 0), 0);
  assert.equal(codePointOffsetToIndex(text, 1000), text.length);
  // Round trip over every code point of a mixed text.
  const mixed = 'a🔥b\nç😀\n\n𝄞z';
  let position = 1;
  for (let index = 0; index < mixed.length; index += mixed.codePointAt(index)! > 0xffff ? 2 : 1) {
    assert.equal(codePointOffsetToIndex(mixed, position), index);
    position++;
  }
});

test('firstTransactionControl: the first statement that begins or ends a transaction, found without a split when no word could', () => {
  assert.equal(
    firstTransactionControl("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1); -- 'begin'\n", 'postgres'),
    undefined,
  );
  assert.deepEqual(firstTransactionControl('CREATE TABLE t (id int);\ncommit;\nBEGIN;', 'sqlite'), {
    sql: 'commit;',
    offset: 25,
  });
  // A word that only looks like one is still read as the split reads it.
  assert.deepEqual(firstTransactionControl('SELECT 1;\nſtart transaction;', 'postgres'), {
    sql: 'ſtart transaction;',
    offset: 10,
  });
  assert.equal(firstTransactionControl('SELECT 1 AS "begin"; -- commit\n', 'postgres'), undefined);
  assert.equal(holdsStatement('-- only a comment\n;;\n/* and another */', 'postgres'), false);
  assert.equal(holdsStatement('-- a comment\nSELECT 1', 'sqlite'), true);
});
