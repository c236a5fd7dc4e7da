/**
 * Fingerprints of `check` findings that survive a re-run and a line inserted above the finding:
 * the code, the file, and a hash of the statement the finding points into (not its line
 * number), with the subject or table a finding names. Code scanning (SARIF
 * `partialFingerprints`) and GitLab Code Quality (`fingerprint`) track a finding across
 * commits by them, so an alert is not closed and reopened because a line moved.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { normaliseText } from '../../core/read.ts';
import { splitStatements } from '../../core/split.ts';
import type { Finding } from '../lint.ts';

/** The text of a file a finding names (as `check` read it), or undefined when it cannot be read. */
export type ReadText = (file: string) => string | undefined;

/** Reads a file relative to the working directory, as findings name them. */
export const readFromDisk: ReadText = (file) => {
  try {
    return normaliseText(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
};

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** UTF-16 index of 1-based `line`:`column` (column in code points), or undefined past the end. */
function indexOf(text: string, line: number, column = 1): number | undefined {
  let at = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', at);
    if (nl < 0) return undefined;
    at = nl + 1;
  }
  for (let c = 1; c < column && at < text.length && text[at] !== '\n'; c++) {
    at += (text.codePointAt(at) ?? 0) > 0xffff ? 2 : 1;
  }
  return at;
}

/**
 * What the finding points into, with whitespace runs made one space: the statement holding its
 * position, else (a comment line, a directive) that line's text; '' for a finding about a whole
 * file.
 */
export function anchorText(finding: Finding, read: ReadText): string {
  if (finding.line === undefined) return '';
  const text = read(finding.file);
  if (text === undefined) return '';
  const at = indexOf(text, finding.line, finding.column);
  if (at === undefined) return '';
  const dialect = /(^|[/\\])sqlite([/\\]|$)/.test(finding.file) ? 'sqlite' : 'postgres';
  const statement = splitStatements(text, dialect).find((s) => at >= s.offset && at < s.offset + s.sql.length);
  const lineEnd = text.indexOf('\n', at);
  const lineText = text.slice(text.lastIndexOf('\n', at - 1) + 1, lineEnd < 0 ? undefined : lineEnd);
  return (statement?.sql ?? lineText).replace(/\s+/g, ' ').trim();
}

/**
 * One fingerprint per finding, in order: hex, stable across runs and line moves, and unique in
 * the list (two findings with the same code, file, statement and subject get their order among
 * those added, which is stable too: check reports in a fixed order).
 */
export function fingerprints(findings: readonly Finding[], read: ReadText = readFromDisk): string[] {
  const seen = new Map<string, number>();
  return findings.map((f) => {
    const key = [
      f.code,
      f.file,
      sha256(anchorText(f, read)),
      f.subject ?? '',
      f.on?.table ?? '',
      f.on?.column ?? '',
    ].join('\0');
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    return sha256(n === 0 ? key : `${key}\0${n}`).slice(0, 32);
  });
}
