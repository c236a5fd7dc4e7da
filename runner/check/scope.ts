/**
 * What a revision's files can reach, read from their text: the tables whose rows they can change.
 * The data pass compares only those tables' rows (the schema is read again from what the catalog
 * says changed: catalog/introspect.ts). Where the text could reach further than the names it holds
 * (code that runs, CASCADE, a type, domain, schema or partition changed, a view named), the answer
 * is every table.
 *
 * @module
 */
import type { Dialect } from '../core/files.ts';
import type { Schema } from '../catalog/schema.ts';
import { identifiers } from './lint.ts';

/** Statements whose reach the names in the text do not bound. */
const FAR_REACHING =
  /\b(?:CASCADE|DO|CALL|EXECUTE|INHERITS|PARTITION|ATTACH|DETACH|OWNED|IMPORT)\b|\b(?:CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+)?(?:TYPE|DOMAIN|SCHEMA|EXTENSION|FUNCTION|PROCEDURE|TRIGGER|RULE|POLICY|AGGREGATE|OPERATOR|CAST)\b/i;

/**
 * The lower-cased names the files can reach in `before`, plus every word they hold (a table they
 * create is named there); undefined when they can reach every table. A table reached brings the
 * tables whose foreign keys point at it (a rename or a cascade changes them), transitively, and
 * an index named brings its table.
 */
export function reachedNames(before: Schema, texts: readonly string[], dialect: Dialect): Set<string> | undefined {
  if (Object.keys(before.others).some((k) => /^(trigger|function|procedure|rule) /.test(k))) return undefined;
  const words = new Set<string>();
  for (const text of texts) {
    if (FAR_REACHING.test(text)) return undefined;
    for (const id of identifiers(text, dialect)) words.add(id.name.toLowerCase());
  }
  const views = Object.keys(before.others).flatMap((k) => (/^(materialized )?view /.test(k) ? [k] : []));
  if (views.some((k) => words.has(bare(k.slice(k.indexOf('view ') + 5))))) return undefined;
  const reached = (name: string) => words.has(name.toLowerCase()) || words.has(bare(name));
  for (const t of before.tables) if (t.indexes.some((i) => words.has(bare(i.name)))) words.add(t.name.toLowerCase());
  for (let grew = true; grew; ) {
    grew = false;
    for (const t of before.tables) {
      if (reached(t.name) || !t.foreignKeys.some((f) => reached(f.refTable))) continue;
      words.add(t.name.toLowerCase());
      grew = true;
    }
  }
  return words;
}

/** The tables of `before` the files reach (every one when they reach further than their names). */
export function reachedTables(before: Schema, texts: readonly string[], dialect: Dialect): string[] {
  const names = reachedNames(before, texts, dialect);
  const all = before.tables.map((t) => t.name);
  return names === undefined ? all : all.filter((t) => names.has(t.toLowerCase()) || names.has(bare(t)));
}

/** The last part of a qualified name, lower-cased. */
function bare(name: string): string {
  return (name.split('.').pop() as string).toLowerCase();
}
