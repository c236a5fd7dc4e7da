/**
 * Migration folders for the bench, written once per run into a scratch directory. Every tool
 * gets the very same SQL: ours as `.up.sql`/`.down.sql` pairs, dbmate and node-pg-migrate as one
 * file per migration with their own section markers around the same text.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checksumOf } from '../runner/core/files.ts';

export interface BenchMigration {
  /** Plain-digit version, zero-padded: `000001`. */
  revision: string;
  name: string;
  up: string;
  down: string;
  /** sha256 of the up text, as the runner records it. */
  checksum: string;
}

export interface Folder {
  migrations: BenchMigration[];
  /** Root for `--dir`: holds `postgres/` and `sqlite/` with the same pairs. */
  ours: string;
  /** dbmate: `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down`. */
  dbmate: string;
  /** node-pg-migrate: `<version>_<name>.sql` with `-- Up Migration` / `-- Down Migration`. */
  nodePgMigrate: string;
}

/** A small, realistic migration: a table, an index, a row. Valid SQL for both dialects. */
function small(i: number): Pick<BenchMigration, 'up' | 'down'> {
  const t = `bench_${String(i).padStart(5, '0')}`;
  return {
    up: `-- bench migration ${i}\nCREATE TABLE ${t} (\n  id integer PRIMARY KEY,\n  name text NOT NULL\n);\nCREATE INDEX ${t}_name ON ${t} (name);\nINSERT INTO ${t} (id, name) VALUES (1, 'one');\n`,
    down: `DROP TABLE ${t};\n`,
  };
}

/** For `history`: the files are read, never run, so their text hardly matters. */
function trivial(i: number): Pick<BenchMigration, 'up' | 'down'> {
  return { up: `-- bench migration ${i}\nSELECT 1;\n`, down: `SELECT 1;\n` };
}

export function writeFolder(root: string, count: number, kind: 'small' | 'trivial'): Folder {
  const folder: Folder = {
    migrations: [],
    ours: join(root, 'ours'),
    dbmate: join(root, 'dbmate'),
    nodePgMigrate: join(root, 'node-pg-migrate'),
  };
  for (const d of [join(folder.ours, 'postgres'), join(folder.ours, 'sqlite'), folder.dbmate, folder.nodePgMigrate])
    mkdirSync(d, { recursive: true });
  const width = Math.max(6, String(count).length);
  for (let i = 1; i <= count; i++) {
    const revision = String(i).padStart(width, '0');
    const name = `bench_${String(i).padStart(5, '0')}`;
    const { up, down } = kind === 'small' ? small(i) : trivial(i);
    const m: BenchMigration = { revision, name, up, down, checksum: checksumOf(up) };
    folder.migrations.push(m);
    const stem = `${revision}_${name}`;
    for (const dialect of ['postgres', 'sqlite']) {
      writeFileSync(join(folder.ours, dialect, `${stem}.up.sql`), up);
      writeFileSync(join(folder.ours, dialect, `${stem}.down.sql`), down);
    }
    writeFileSync(join(folder.dbmate, `${stem}.sql`), `-- migrate:up\n${up}\n-- migrate:down\n${down}`);
    writeFileSync(join(folder.nodePgMigrate, `${stem}.sql`), `-- Up Migration\n${up}\n-- Down Migration\n${down}`);
  }
  return folder;
}
