import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCEPTED_URLS, DEFAULT_URL, parseTableName, parseUrl, redactUrl } from '../runner/core/config.ts';
import { failure } from './support/assert.ts';

describe('parseUrl: SQLite', () => {
  const cases: Array<[string, string]> = [
    ['sqlite:bot.db', 'bot.db'],
    ['sqlite:data/bot.db', 'data/bot.db'],
    ['sqlite:/var/lib/bot.db', '/var/lib/bot.db'],
    ['sqlite:///bot.db', 'bot.db'],
    ['sqlite:///data/bot.db', 'data/bot.db'],
    ['sqlite:////var/lib/bot.db', '/var/lib/bot.db'],
    ['sqlite+aiosqlite:///bot.db', 'bot.db'],
    ['sqlite+aiosqlite:////srv/bot.db', '/srv/bot.db'],
    ['sqlite+pysqlite:///bot.db', 'bot.db'],
    ['sqlite::memory:', ':memory:'],
    ['sqlite:///bot.db?mode=rwc', 'bot.db'],
    ['  sqlite:bot.db\n', 'bot.db'],
    ['sqlite:my%20bot.db', 'my bot.db'],
  ];
  for (const [url, filename] of cases) {
    test(`${JSON.stringify(url)} → ${filename}`, () => {
      const c = parseUrl(url);
      assert.equal(c.dialect, 'sqlite');
      assert.equal(c.dialect === 'sqlite' && c.filename, filename);
    });
  }

  test('the default URL is SQLite bot.db', () => {
    assert.deepEqual(parseUrl(DEFAULT_URL), {
      dialect: 'sqlite',
      filename: 'bot.db',
      display: 'sqlite:bot.db',
      dropped: [],
    });
  });

  test("SQLAlchemy's query options are left out, and listed for the note", () => {
    const c = parseUrl('sqlite+aiosqlite:///x.db?check_same_thread=false&timeout=20');
    assert.equal(c.dialect === 'sqlite' && c.filename, 'x.db');
    assert.deepEqual(c.dropped, ['check_same_thread', 'timeout']);
  });

  test('a literal % in a path that is not an escape is kept, not a crash', () => {
    const c = parseUrl('sqlite:100%_sure.db');
    assert.equal(c.dialect === 'sqlite' && c.filename, '100%_sure.db');
  });
});

describe('parseUrl: PostgreSQL', () => {
  for (const scheme of ['postgres', 'postgresql']) {
    test(`${scheme}://`, () => {
      const c = parseUrl(`${scheme}://bot:s3cret@db.internal:5432/bot?sslmode=require`);
      assert.equal(c.dialect, 'postgres');
      if (c.dialect !== 'postgres') return;
      assert.equal(c.url, 'postgres://bot:s3cret@db.internal:5432/bot?sslmode=require');
      assert.deepEqual(c.server, {
        host: ['db.internal'],
        port: [5432],
        database: 'bot',
        username: 'bot',
        password: 's3cret',
        ssl: 'require',
        parameters: {},
      });
      assert.equal(c.password, 's3cret');
      assert.equal(c.display, `${scheme}://bot:****@db.internal:5432/bot?sslmode=require`);
    });
  }

  for (const driver of ['asyncpg', 'psycopg', 'psycopg2', 'pg8000']) {
    test(`postgresql+${driver}:// becomes postgres://`, () => {
      const c = parseUrl(`postgresql+${driver}://bot:s3cret@db:5432/bot`);
      assert.equal(c.dialect, 'postgres');
      if (c.dialect !== 'postgres') return;
      assert.equal(c.url, 'postgres://bot:s3cret@db:5432/bot');
      assert.deepEqual(c.dropped, []);
      assert.equal(c.password, 's3cret');
      assert.equal(c.display, `postgresql+${driver}://bot:****@db:5432/bot`);
    });
  }

  test('a percent-encoded password is decoded for connecting and hidden for display', () => {
    const c = parseUrl('postgres://bot:p%40ss%2Fw%3Ard@db/bot');
    assert.equal(c.dialect === 'postgres' && c.password, 'p@ss/w:rd');
    assert.equal(c.display, 'postgres://bot:****@db/bot');
  });

  test('no password: undefined, and nothing to hide', () => {
    const c = parseUrl('postgres://bot@db/bot');
    assert.equal(c.dialect === 'postgres' && c.password, undefined);
    assert.equal(c.display, 'postgres://bot@db/bot');
    assert.equal(parseUrl('postgres://db/bot').display, 'postgres://db/bot');
  });
});

describe('parseUrl: rejected forms', () => {
  for (const url of [
    'mysql://u:p@h/db',
    'sqlite://x',
    'sqlite:',
    'sqlite:///',
    'sqlite',
    'sqlite3:bot.db',
    '',
    '   ',
    'bot.db',
    'file:bot.db',
    'postgres:db',
    'postgresql+foo://u@h/db',
    'http://example.com',
  ]) {
    test(`${JSON.stringify(url)} is BAD_URL listing the accepted forms`, () => {
      const msg = failure(() => parseUrl(url), 'BAD_URL');
      for (const form of ACCEPTED_URLS) assert.ok(msg.includes(form), `${form} missing from: ${msg}`);
      for (const form of [
        'postgres://',
        'postgresql+asyncpg://',
        'sqlite+aiosqlite:///bot.db',
        'sqlite::memory:',
        'sqlite:////absolute',
      ]) {
        assert.ok(msg.includes(form), `${form} missing from: ${msg}`);
      }
    });
  }

  for (const url of [
    'mysql://bot:hunter2hunter2@db/bot',
    'postgres://bot:hunter2/hunter2@db/bot', // unencoded / breaks URL parsing
    'postgres://bot:hunter2#hunter2@db/bot',
    'postgres://bot:hunter2?hunter2@db/bot',
    'postgres//bot:hunter2hunter2@db/bot',
    'postgresql+foo://bot:hunter2hunter2@db/bot',
  ]) {
    test(`the BAD_URL message for ${url.replace(/hunter2/g, 'x')} never holds the password`, () => {
      const msg = failure(() => parseUrl(url), 'BAD_URL');
      assert.ok(!msg.includes('hunter2'), msg);
      assert.ok(msg.includes('****'), msg);
    });
  }
});

describe('redactUrl', () => {
  const cases: Array<[string, string]> = [
    ['postgres://bot:s3cret@db:5432/bot', 'postgres://bot:****@db:5432/bot'],
    ['postgresql+asyncpg://bot:s3cret@db/bot', 'postgresql+asyncpg://bot:****@db/bot'],
    ['postgres://bot:p%40ss%23w@db/bot', 'postgres://bot:****@db/bot'],
    ['postgres://bot:p@ss@db/bot', 'postgres://bot:****@db/bot'],
    ['postgres://bot:p:a:s:s@db/bot', 'postgres://bot:****@db/bot'],
    ['postgres://bot:pa/ss@db/bot', 'postgres://bot:****@db/bot'],
    ['postgres://bot:pa#ss@db/bot', 'postgres://bot:****@db/bot'],
    ['postgres://bot:pa?ss@db/bot', 'postgres://bot:****@db/bot'],
    ["postgres://bot:!$&'()*+,;=@db/bot", 'postgres://bot:****@db/bot'],
    ['postgres://bot:@db/bot', 'postgres://bot:****@db/bot'],
    ['postgres://bot@db:5432/bot', 'postgres://bot@db:5432/bot'],
    ['postgres://db:5432/bot', 'postgres://db:5432/bot'],
    ['postgres://db/bot?sslmode=require', 'postgres://db/bot?sslmode=require'],
    ['sqlite:///bot.db', 'sqlite:///bot.db'],
    ['sqlite::memory:', 'sqlite::memory:'],
  ];
  for (const [url, want] of cases) {
    test(`${url} → ${want}`, () => {
      assert.equal(redactUrl(url), want);
    });
  }

  test('parseUrl display never holds the password, for any special character in it', () => {
    for (const ch of ['@', ':', '!', '$', '%25', '%40', '%2F', '%3F', '%23', ' ']) {
      const secret = `top${ch}secret`;
      let shown: string;
      try {
        shown = parseUrl(`postgres://bot:${secret}@db/bot`).display;
      } catch (e) {
        shown = (e as Error).message;
      }
      assert.ok(!shown.includes('secret'), `${ch}: ${shown}`);
    }
  });
});

describe('parseTableName', () => {
  test('a plain name', () => {
    assert.deepEqual(parseTableName('schema_migrations', false), { table: 'schema_migrations' });
    assert.deepEqual(parseTableName('_Migrations2', true), { table: '_Migrations2' });
  });

  test('schema.table where schemas are allowed', () => {
    assert.deepEqual(parseTableName('ops.schema_migrations', true), { schema: 'ops', table: 'schema_migrations' });
  });

  test('schema.table where they are not is BAD_TABLE_NAME', () => {
    const msg = failure(() => parseTableName('ops.schema_migrations', false), 'BAD_TABLE_NAME');
    assert.ok(msg.includes('ops.schema_migrations'), msg);
  });

  test('63 characters is the limit', () => {
    const max = `t${'x'.repeat(62)}`;
    assert.deepEqual(parseTableName(max, false), { table: max });
    failure(() => parseTableName(`${max}x`, false), 'BAD_TABLE_NAME');
  });

  for (const bad of [
    '',
    '1table',
    'schema migrations',
    'a.b.c',
    'x"; DROP TABLE users; --',
    '"quoted"',
    'a-b',
    '.t',
    't.',
    'tablé',
  ]) {
    test(`${JSON.stringify(bad)} is BAD_TABLE_NAME`, () => {
      failure(() => parseTableName(bad, true), 'BAD_TABLE_NAME');
    });
  }
});

describe('passwords in the query string', () => {
  test('libpq-style ?password= is hidden and known as the password', () => {
    const url = 'postgres://bot@127.0.0.1/db?sslmode=disable&password=hunter2';
    assert.equal(redactUrl(url), 'postgres://bot@127.0.0.1/db?sslmode=disable&password=****');
    const c = parseUrl(url);
    assert.ok(c.dialect === 'postgres' && c.password === 'hunter2' && !c.display.includes('hunter2'));
  });
});

describe('parseUrl: one strict reading, explicit parts for the driver', () => {
  const parts = (url: string) => {
    const c = parseUrl(url);
    assert.ok(c.dialect === 'postgres');
    return c;
  };

  test('a ?password= value holding @ is the password, and the display shows none of it', () => {
    const c = parts('postgres://bot@db:5432/bot?password=pw@MyS3cretTail');
    assert.equal(c.server.password, 'pw@MyS3cretTail');
    assert.deepEqual(c.server.host, ['db']);
    assert.equal(c.display, 'postgres://bot@db:5432/bot?password=****');
    assert.doesNotMatch(c.display, /S3cret/);
  });

  for (const url of [
    'postgres://bot:pw@MyS3cretTail@db/bot',
    'postgres://bot:pw#MyS3cretTail@db/bot',
    'postgres://bot:12#MyS3cretTail@db/bot',
    'postgres://bot:12?MyS3cretTail@db/bot',
    'postgres://bot:12/MyS3cretTail@db/bot',
    'postgres://bot:my S3cretTail@db/bot',
    'postgres://bot:100%S3cretTail@db/bot',
  ]) {
    test(`${url.replace('MyS3cretTail', '…')}: BAD_URL, never a host name made of the password`, () => {
      const msg = failure(() => parseUrl(url), 'BAD_URL');
      assert.doesNotMatch(msg, /S3cret/);
      assert.match(msg, /percent-encode/i);
    });
  }

  test('a password of 000 is hidden as a value, not as a substring', () => {
    const c = parts('postgres://bot:000@db:5000/bot_000');
    assert.equal(c.display, 'postgres://bot:****@db:5000/bot_000');
    assert.equal(c.server.password, '000');
  });

  test('percent-encoded parts are decoded once; the URL handed on reads back to the same parts', () => {
    const c = parts('postgres://b%40t:p%40ss%23w%2F%3F@[::1]:6543,db2/my%20db?application_name=a%20b');
    assert.deepEqual(c.server, {
      host: ['::1', 'db2'],
      port: [6543, 5432],
      database: 'my db',
      username: 'b@t',
      password: 'p@ss#w/?',
      parameters: { application_name: 'a b' },
    });
    assert.deepEqual(parts(c.url).server, c.server);
  });

  test("SQLAlchemy's and its drivers' options are dropped; libpq's are kept", () => {
    const c = parts(
      'postgresql+asyncpg://bot:pw@db/bot?prepared_statement_cache_size=0&sslmode=disable&application_name=bot&connect_timeout=7&options=-c%20search_path%3Dapp&target_session_attrs=read-write&statement_cache_size=0',
    );
    assert.deepEqual(c.dropped, ['prepared_statement_cache_size', 'statement_cache_size']);
    assert.equal(c.server.ssl, false);
    assert.equal(c.server.connectTimeout, 7);
    assert.equal(c.server.targetSessionAttrs, 'read-write');
    assert.deepEqual(c.server.parameters, { application_name: 'bot', options: '-c search_path=app' });
    assert.doesNotMatch(c.url, /cache_size/);
    assert.doesNotMatch(c.display, /cache_size|pw/);
  });

  test('libpq spellings of the parts in the query: user, dbname, host, port', () => {
    const c = parts('postgres:///?user=bot&dbname=app&host=db&port=6000');
    assert.deepEqual(c.server, { host: ['db'], port: [6000], database: 'app', username: 'bot', parameters: {} });
    assert.equal(c.display, 'postgres://bot@db:6000/app');
  });
});
