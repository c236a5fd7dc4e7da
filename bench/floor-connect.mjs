// Floor of a no-op `head`: start node, load the driver, connect, one query, close.
// node bench/floor-connect.mjs postgres://… | sqlite:path
const url = process.argv[2] ?? '';
if (url.startsWith('sqlite:')) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(url.slice('sqlite:'.length));
  db.prepare('SELECT 1').get();
  db.close();
} else {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, { max: 1, fetch_types: false, onnotice: () => {} });
  await sql.unsafe('SELECT 1');
  await sql.end();
}
