// Floor of `history`: start node, list the folder, read the record table, print a line per revision.
// node bench/floor-history.cjs postgres://… | sqlite:path  <dialect folder>
const { readdirSync } = require('node:fs');

const [url = '', dir = '.'] = process.argv.slice(2);
const stems = readdirSync(dir)
  .filter((f) => f.endsWith('.up.sql'))
  .map((f) => f.slice(0, -'.up.sql'.length))
  .sort();
const query = 'SELECT revision, applied_at FROM schema_migrations ORDER BY seq';
async function main() {
  let rows;
  if (url.startsWith('sqlite:')) {
    const Database = require('better-sqlite3');
    const db = new Database(url.slice('sqlite:'.length), { readonly: true });
    rows = db.prepare(query).all();
    db.close();
  } else {
    const postgres = require('postgres');
    const sql = postgres(url, { max: 1, fetch_types: false, onnotice: () => {} });
    rows = await sql.unsafe(query.replace('applied_at', 'applied_at::text AS applied_at'));
    await sql.end();
  }
  const applied = new Map(rows.map((r) => [String(r.revision), String(r.applied_at)]));
  const lines = stems.map((stem) => {
    const cut = stem.indexOf('_');
    const at = applied.get(stem.slice(0, cut));
    return `${stem.slice(0, cut)}  ${stem.slice(cut + 1)}  ${at ? `applied ${at}` : 'pending'}`;
  });
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
