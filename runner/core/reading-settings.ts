/**
 * The server settings that change how PostgreSQL reads SQL text: with
 * `standard_conforming_strings` off a backslash escapes a quote in '…', so `'\' -- '` hides what
 * follows from the runner's lexer (core/lexer.ts), which reads text as the default `on` does;
 * `backslash_quote` decides whether `\'` is accepted at all. The runner pins both in every
 * transaction and statement it sends (drivers/postgres-sql.ts), refuses a session where the
 * first is off, and refuses a file that names either (#24): a file must not change how the
 * next one is read.
 *
 * @module
 */
import { Lexer } from './lexer.ts';

/** The settings, as a file could name them: bare, quoted, in a string (`set_config`) or a function body. */
const READING = /standard_conforming_strings|backslash_quote/i;

/** Where `text` names a setting that changes how SQL text is read (outside comments), else undefined. */
export function namesReadingSetting(text: string): { offset: number; name: string } | undefined {
  if (!READING.test(text)) return undefined;
  const lexer = new Lexer(text, 'postgres');
  while (lexer.next()) {
    if (lexer.kind === 'comment') continue;
    const m = READING.exec(lexer.value);
    if (m) return { offset: lexer.start + m.index, name: m[0].toLowerCase() };
  }
  return undefined;
}
