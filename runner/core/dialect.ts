/**
 * The two words every part of the runner shares: which database a folder, a driver or a reader
 * is for (`Dialect`), and which file of a pair runs (`Direction`). A leaf: it imports nothing,
 * so the lexer and the errors can name them too.
 *
 * @module
 */

/** The database a folder, a driver or a reader is for; also the dialect folder's name under `--dir`. */
export type Dialect = 'postgres' | 'sqlite';

/** Which file of a pair runs: `up` applies a revision, `down` rolls it back. */
export type Direction = 'up' | 'down';

export const DIALECTS: readonly Dialect[] = ['postgres', 'sqlite'];
