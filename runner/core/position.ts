/**
 * Places in a migration's text, converted between the units each side counts in.
 *
 * JS strings index UTF-16 code units, while editors (for `file:line:column`) and PostgreSQL (for
 * an error's `position`) count characters, i.e. code points: without converting, every emoji or
 * other astral character before an error would shift it by one. The text is already normalised
 * (no BOM, LF only), so LF is the only line break.
 *
 * @module
 */

/** Offset → 1-based line and column, counting code points (not UTF-16 units); LF is the only line break (text is normalised). */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const stop = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let column = 1;
  for (let i = 0; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      column = 1;
    } else if (!(isLowSurrogate(c) && i > 0 && isHighSurrogate(text.charCodeAt(i - 1)))) {
      column++;
    }
  }
  return { line, column };
}

/**
 * PostgreSQL's error `position` → JS string index. `codePointOffset` is the value exactly as the
 * server sends it: 1-based, counting characters (code points) from the start of the text sent.
 * The result is 0-based in UTF-16 units, clamped to `[0, text.length]`.
 * https://www.postgresql.org/docs/current/protocol-error-fields.html
 */
export function codePointOffsetToIndex(text: string, codePointOffset: number): number {
  let index = 0;
  for (let k = 1; k < codePointOffset && index < text.length; k++) {
    const pair = isHighSurrogate(text.charCodeAt(index)) && isLowSurrogate(text.charCodeAt(index + 1));
    index += pair ? 2 : 1;
  }
  return index;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
