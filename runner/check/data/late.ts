/**
 * Rows written while a revision is applied: after an up that widens a text column (a longer
 * `varchar(n)`, a limit dropped), rows that use the new room are added, and the down must keep
 * their values too. A down that narrows the column again with `USING left(v, 50)` cuts them,
 * which rows from before the up (within the old limit) can never show (issue #26).
 *
 * @module
 */
import type { Schema, Table } from '../../catalog/schema.ts';
import { addRows, type DataDb } from './fill.ts';
import type { TablePrint } from './fingerprint.ts';

/** The tables of `made` (among `tables`) with a text column that allows longer values than in `before`. */
export function widened(before: Schema, made: Schema, tables: readonly string[]): Table[] {
  return made.tables.filter((t) => {
    const was = before.tables.find((b) => b.name === t.name);
    if (!was || !tables.includes(t.name)) return false;
    return t.columns.some((c) => {
      const old = was.columns.find((o) => o.name === c.name);
      return (
        c.family === 'text' &&
        old?.maxLength !== undefined &&
        (c.maxLength === undefined || c.maxLength > old.maxLength)
      );
    });
  });
}

/** Add rows to each widened table; the keys of the rows that were not there before. */
export async function addLateRows(
  db: DataDb,
  made: Schema,
  tables: readonly Table[],
  rows: number,
  seed: number,
): Promise<void> {
  for (const t of tables) await addRows(db, made, t, Math.max(5, Math.ceil(rows / 4)), seed);
}

/** `prints` split by key: the rows whose keys `earlier` has, and the others (added since). */
export function splitByKeys(
  prints: readonly TablePrint[],
  earlier: readonly TablePrint[],
): { old: TablePrint[]; late: TablePrint[] } {
  const old: TablePrint[] = [];
  const late: TablePrint[] = [];
  for (const p of prints) {
    const keys = earlier.find((e) => e.table === p.table)?.rows;
    const kept = new Map<string, string[][]>();
    const added = new Map<string, string[][]>();
    for (const [k, v] of p.rows) (keys?.has(k) ? kept : added).set(k, v);
    const count = (m: Map<string, string[][]>) => [...m.values()].reduce((n, v) => n + v.length, 0);
    old.push({ ...p, rows: kept, total: count(kept) });
    if (added.size > 0) late.push({ ...p, rows: added, total: count(added) });
  }
  return { old, late };
}

/** `prints` without the rows `late` holds (`rest`), and those rows alone (`mine`). */
export function partition(
  prints: readonly TablePrint[],
  late: readonly TablePrint[],
): { rest: TablePrint[]; mine: TablePrint[] } {
  const rest: TablePrint[] = [];
  const mine: TablePrint[] = [];
  for (const p of prints) {
    const keys = late.find((l) => l.table === p.table)?.rows;
    if (!keys) {
      rest.push(p);
      continue;
    }
    const { old, late: added } = splitByKeys([p], [{ ...p, rows: keys }]);
    rest.push(...added);
    mine.push(...old);
  }
  return { rest, mine };
}
