// Lower bounds: the least a node program can do for a workload while keeping the runner's
// promises (read and validate every file before touching the database, hash the up files, one
// transaction per file with its record row, the lock). Printed beside the runner so a target
// that even this cannot meet shows as out of reach, with figures.
//
//   node bench/bounds.cjs noop     postgres://…  <dialect folder>
//   node bench/bounds.cjs history  postgres://…|sqlite:path  <dialect folder>
//   node bench/bounds.cjs up|down  postgres://…|sqlite:path  <dialect folder>
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

const [mode, url = '', dir = '.'] = process.argv.slice(2);
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.sql'))
  .sort();
const files = new Map(names.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
const ups = names
  .filter((f) => f.endsWith('.up.sql'))
  .map((f) => {
    const stem = f.slice(0, -'.up.sql'.length);
    const cut = stem.indexOf('_');
    return {
      revision: stem.slice(0, cut),
      name: stem.slice(cut + 1),
      stem,
      checksum: createHash('sha256').update(files.get(f)).digest('hex'),
    };
  });
const q = (s) => `'${s.replace(/'/g, "''")}'`;
const sqlite = url.startsWith('sqlite:');

async function withPg(fn) {
  const postgres = require('postgres');
  const sql = postgres(url, { max: 1, fetch_types: false, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

async function main() {
  if (mode === 'noop' || mode === 'history') {
    const query = `SELECT revision, checksum, applied_at${sqlite ? '' : '::text'} AS applied_at FROM schema_migrations ORDER BY seq`;
    let rows;
    if (sqlite) {
      const Database = require('better-sqlite3');
      const db = new Database(url.slice('sqlite:'.length), { readonly: true });
      rows = db.prepare(query).all();
      db.close();
    } else {
      rows = await withPg(async (sql) => {
        if (mode === 'history') return sql.unsafe(query);
        await sql.unsafe('SELECT pg_try_advisory_lock(42)');
        const r = await sql.unsafe(query);
        await sql.unsafe('SELECT pg_advisory_unlock(42)');
        return r;
      });
    }
    const applied = new Map(rows.map((r) => [String(r.revision), r]));
    const changed = ups.filter(
      (m) => applied.has(m.revision) && applied.get(m.revision).checksum !== m.checksum,
    ).length;
    const lines =
      mode === 'noop'
        ? [`nothing to do (${changed} changed)`]
        : ups.map(
            (m) =>
              `${m.revision}  ${m.name}  ${applied.has(m.revision) ? `applied ${applied.get(m.revision).applied_at}` : 'pending'}`,
          );
    process.stdout.write(lines.join('\n') + '\n');
  } else {
    const list = mode === 'up' ? ups : [...ups].reverse();
    const record = (m) =>
      mode === 'up'
        ? `INSERT INTO schema_migrations (revision, name, checksum, status, applied_at, duration_ms, seq) VALUES (${q(m.revision)}, ${q(m.name)}, ${q(m.checksum)}, 'applied', ${sqlite ? `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` : 'clock_timestamp()'}, 0, (SELECT coalesce(max(seq), 0) + 1 FROM schema_migrations))`
        : `DELETE FROM schema_migrations WHERE revision = ${q(m.revision)}`;
    const ddl = `CREATE TABLE IF NOT EXISTS schema_migrations (revision text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, status text NOT NULL CHECK (status IN ('applied', 'failed')), applied_at ${sqlite ? 'text' : 'timestamptz'} NOT NULL, duration_ms integer NOT NULL, seq integer NOT NULL UNIQUE, statements_run integer, error text)`;
    if (sqlite) {
      const Database = require('better-sqlite3');
      const db = new Database(url.slice('sqlite:'.length));
      db.pragma('foreign_keys = ON');
      db.exec(ddl);
      const fk = db.prepare('PRAGMA foreign_key_check');
      for (const m of list) {
        db.exec('BEGIN IMMEDIATE');
        db.exec(files.get(`${m.stem}.${mode}.sql`));
        if (fk.all().length > 0) throw new Error('foreign keys');
        db.exec(record(m));
        db.exec('COMMIT');
        process.stdout.write(`${mode} ${m.revision}\n`);
      }
      db.close();
    } else {
      await withPg(async (sql) => {
        await sql.unsafe(ddl);
        // One round trip per file: BEGIN, the file, its record row and COMMIT pipelined.
        for (const m of list) {
          const done = await Promise.all([
            sql.unsafe('BEGIN'),
            sql.unsafe(files.get(`${m.stem}.${mode}.sql`)),
            sql.unsafe(record(m)),
            sql.unsafe('COMMIT'),
          ]);
          if (done[3].command !== 'COMMIT') throw new Error('rolled back');
          process.stdout.write(`${mode} ${m.revision}\n`);
        }
      });
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
