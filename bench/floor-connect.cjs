// Floor of a no-op `head`: start node, load the driver, connect, one query, close.
// node bench/floor-connect.cjs postgres://… | sqlite:path
// CommonJS, like every floor here: node 20 loads a driver through require() several ms sooner
// than through import(), and a floor is the cheapest way to do the work.
const url = process.argv[2] ?? '';
if (url.startsWith('sqlite:')) {
  const Database = require('better-sqlite3');
  const db = new Database(url.slice('sqlite:'.length));
  db.prepare('SELECT 1').get();
  db.close();
} else {
  const postgres = require('postgres');
  const sql = postgres(url, { max: 1, fetch_types: false, onnotice: () => {} });
  sql.unsafe('SELECT 1').then(() => sql.end());
}
