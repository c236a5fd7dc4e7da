/**
 * A catalog as the canonical SQL file `schema` prints: the same schema always gives the same
 * bytes, whatever order the migrations created things in, so that a diff of two files shows
 * only what changed.
 *
 * Order: extensions, schemas, types, sequences, then tables by name each followed by its
 * indexes by name, then what must follow every table (foreign keys, sequence ownership), then
 * views, functions and triggers, each by name. Nothing session- or server-specific is printed
 * (no SET lines, owners, privileges or version comments), so the file loads as it is into an
 * empty database with `psql -v ON_ERROR_STOP=1 -f` or `sqlite3`.
 *
 * @module
 */
import type { Catalog, CatalogObject, ObjectKind } from './model.ts';

const BEFORE_TABLES: readonly ObjectKind[] = ['extension', 'schema', 'type', 'sequence'];
const AFTER_TABLES: readonly ObjectKind[] = ['view', 'function', 'trigger'];

function byName(a: CatalogObject, b: CatalogObject): number {
  const x = `${a.table ?? ''}\u0000${a.name}`;
  const y = `${b.table ?? ''}\u0000${b.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
}

export function renderCatalog(catalog: Catalog): string {
  const printed = catalog.objects.filter((o) => o.sql !== '').sort(byName);
  const sections: string[][] = [];
  const of = (kind: ObjectKind, late = false) => printed.filter((o) => o.kind === kind && (o.late ?? false) === late);
  for (const kind of BEFORE_TABLES) sections.push(of(kind).map((o) => o.sql));
  const indexes = of('index');
  for (const table of of('table')) {
    sections.push([table.sql, ...indexes.filter((i) => i.table === table.name).map((i) => i.sql)]);
  }
  sections.push(printed.filter((o) => o.late).map((o) => o.sql));
  for (const kind of AFTER_TABLES) sections.push(of(kind).map((o) => o.sql));
  const body = sections
    .filter((s) => s.length > 0)
    .map((s) => s.map((statement) => `${statement};\n`).join(''))
    .join('\n');
  // The same words for a folder's schema and a live database's, so that the two compare as files.
  const dialect = catalog.dialect === 'postgres' ? 'PostgreSQL' : 'SQLite';
  return `-- ${dialect} schema in canonical form, printed by \`schema\` (generated: change it through a migration and \`schema --write\`).\n\n${body}`;
}
