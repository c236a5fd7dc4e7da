/**
 * Why a statement that runs on empty tables fails on populated ones, in words: read from the
 * statement's own text (the lexer has already split the file), and from the database's message
 * when the statement is not known (SQLite's foreign-key check at COMMIT).
 *
 * @module
 */

export interface Diagnosis {
  sentence: string;
  table?: string;
  column?: string;
}

const NAME = String.raw`(?:"(?:[^"]|"")+"|[\w$]+)(?:\.(?:"(?:[^"]|"")+"|[\w$]+))?`;

function bare(name: string): string {
  return name
    .split('.')
    .map((p) => (p.startsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p.toLowerCase()))
    .join('.');
}

const RULES: Array<{ re: RegExp; say: (t: string, c: string | undefined, m: RegExpExecArray) => string }> = [
  {
    re: new RegExp(
      String.raw`^ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?(${NAME})\s+ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(${NAME})\b(?![\s\S]*\bDEFAULT\b)[\s\S]*\bNOT\s+NULL\b`,
      'i',
    ),
    say: (t, c) => `adds NOT NULL column ${t}.${c} with no default: fails on any non-empty ${t}`,
  },
  {
    re: new RegExp(
      String.raw`^ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?(${NAME})\s+ALTER\s+(?:COLUMN\s+)?(${NAME})\s+SET\s+NOT\s+NULL`,
      'i',
    ),
    say: (t, c) => `sets ${t}.${c} NOT NULL: fails while any row of ${t} holds NULL there`,
  },
  {
    re: new RegExp(
      String.raw`^ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?(${NAME})\s+ALTER\s+(?:COLUMN\s+)?(${NAME})\s+(?:SET\s+DATA\s+)?TYPE\b`,
      'i',
    ),
    say: (t, c) => `changes the type of ${t}.${c}: fails on values of ${t} the new type cannot hold`,
  },
  {
    re: new RegExp(
      String.raw`^CREATE\s+UNIQUE\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:${NAME}\s+)?ON\s+(?:ONLY\s+)?(${NAME})\s*(?:USING\s+\w+\s*)?\(\s*(${NAME})?`,
      'i',
    ),
    say: (t, c) => `creates a unique index on ${t}${c ? ` (${c})` : ''}: fails when rows of ${t} repeat a value`,
  },
  {
    re: new RegExp(
      String.raw`^ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?(${NAME})\s+ADD\s+(?:CONSTRAINT\s+${NAME}\s+)?FOREIGN\s+KEY\s*\(\s*(${NAME})`,
      'i',
    ),
    say: (t, c) => `adds a foreign key on ${t}.${c}: fails while rows of ${t} point at no parent row`,
  },
  {
    re: new RegExp(
      String.raw`^ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?(${NAME})\s+ADD\s+(?:CONSTRAINT\s+${NAME}\s+)?(UNIQUE|PRIMARY\s+KEY|CHECK)\b`,
      'i',
    ),
    say: (t, _c, m) =>
      `adds a ${(m[2] as string).toUpperCase().replace(/\s+/g, ' ')} constraint to ${t}: fails on rows of ${t} that break it`,
  },
];

/**
 * The table (and column) a failing statement works on, and what about it fails on rows. `file`,
 * the whole file, names the foreign key a SQLite table rebuild adds.
 */
export function diagnose(statement: string, message: string, file = ''): Diagnosis {
  const sql = statement.replace(/^(\s*--[^\n]*\n)*\s*/, '');
  const copy = new RegExp(String.raw`^INSERT\s+INTO\s+(${NAME})[\s\S]*?\bSELECT\b[\s\S]*?\bFROM\s+(${NAME})`, 'i').exec(
    sql,
  );
  if (copy && /FOREIGN KEY constraint failed/i.test(message)) {
    const table = bare(copy[2] as string);
    const column = rebuiltForeignKey(file, bare(copy[1] as string));
    const on = column === undefined ? '' : ` on ${column}`;
    return {
      sentence: `copies the rows of ${table} into ${bare(copy[1] as string)}, whose foreign key${on} they break: fails while rows of ${table} point at no parent row`,
      table,
      ...(column === undefined ? {} : { column }),
    };
  }
  for (const rule of RULES) {
    const m = rule.re.exec(sql);
    if (!m) continue;
    const table = bare(m[1] as string);
    const column = m[2] && !/^(UNIQUE|PRIMARY|CHECK)/i.test(m[2]) ? bare(m[2]) : undefined;
    return { sentence: rule.say(table, column, m), table, ...(column === undefined ? {} : { column }) };
  }
  const fk = /FOREIGN KEY constraint failed: .*\(first: (\S+) rowid \S+ → (\S+)\)/.exec(message);
  if (fk) {
    const table = fk[1] as string;
    return { sentence: `leaves rows of ${table} pointing at no row of ${fk[2]}: fails once ${table} has rows`, table };
  }
  const unique = /UNIQUE constraint failed: ([\w$]+)\.([\w$]+)/.exec(message);
  if (unique) {
    const [, table, column] = unique as unknown as [string, string, string];
    return { sentence: `makes ${table}.${column} unique: fails when rows of ${table} repeat a value`, table, column };
  }
  const notNull = /NOT NULL constraint failed: ([\w$]+)\.([\w$]+)/.exec(message);
  if (notNull) {
    const [, table, column] = notNull as unknown as [string, string, string];
    return {
      sentence: `makes ${table}.${column} NOT NULL: fails while rows of ${table} hold NULL there`,
      table,
      column,
    };
  }
  const touched = new RegExp(
    String.raw`^(?:ALTER\s+TABLE|INSERT\s+INTO|UPDATE|DELETE\s+FROM|DROP\s+TABLE)\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?(${NAME})`,
    'i',
  ).exec(sql);
  if (touched) {
    const table = bare(touched[1] as string);
    return { sentence: `fails on the rows of ${table}`, table };
  }
  return { sentence: 'fails on populated tables' };
}

/** The one column with a foreign key in the file's `CREATE TABLE <table>`, when there is exactly one. */
function rebuiltForeignKey(file: string, table: string): string | undefined {
  const create = new RegExp(
    String.raw`CREATE\s+TABLE\s+"?${table.replace(/[.$]/g, '\\$&')}"?\s*\(([\s\S]*?)\);`,
    'i',
  ).exec(file);
  if (!create) return undefined;
  const found = [
    ...[...(create[1] as string).matchAll(/(?:^|,)\s*"?([\w$]+)"?\s+[^,]*?\bREFERENCES\b/gi)].map(
      (m) => m[1] as string,
    ),
    ...[...(create[1] as string).matchAll(/FOREIGN\s+KEY\s*\(\s*"?([\w$]+)"?\s*\)/gi)].map((m) => m[1] as string),
  ];
  return found.length === 1 ? found[0] : undefined;
}
