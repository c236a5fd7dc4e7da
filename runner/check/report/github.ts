/**
 * `check --format=github`: GitHub Actions workflow commands, which GitHub shows as annotations
 * on the pull request's changed files, and a Markdown step summary.
 *
 * GitHub shows at most 10 error and 10 warning annotations (and 10 notices) per step and drops
 * the rest silently (https://github.com/orgs/community/discussions/26680). So errors go first,
 * each kind is cut at that limit here, and the step summary lists every finding with how many
 * were left out of the annotations.
 * https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions
 *
 * @module
 */
import type { Finding } from '../lint.ts';

/** Annotations GitHub shows per step, for each of error, warning and notice. */
export const ANNOTATION_LIMIT = 10;

const COMMAND = { error: 'error', warning: 'warning', note: 'notice' } as const;
const RANK = { error: 0, warning: 1, note: 2 } as const;

/** A command's message: `%`, CR and LF escaped (GitHub's `escapeData`). */
export function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** A command's property value: as data, and `:` and `,` too (GitHub's `escapeProperty`). */
export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** What one workflow command says: its kind, where (all optional), a title, the message. */
export interface Command {
  kind: 'error' | 'warning' | 'notice';
  file?: string;
  line?: number;
  column?: number;
  title: string;
  message: string;
}

/** `::error file=…,line=…,col=…,title=…::message`, the properties it has. */
export function workflowCommand(c: Command): string {
  const props: string[] = [];
  if (c.file) props.push(`file=${escapeProperty(c.file)}`);
  if (c.file && c.line !== undefined) props.push(`line=${c.line}`);
  if (c.file && c.line !== undefined && c.column !== undefined) props.push(`col=${c.column}`);
  props.push(`title=${escapeProperty(c.title)}`);
  return `::${c.kind} ${props.join(',')}::${escapeData(c.message)}`;
}

/** `::error file=…,line=…,col=…,title=CODE::message` for one finding. */
export function annotation(f: Finding): string {
  return workflowCommand({ ...f, kind: COMMAND[f.severity], title: f.code });
}

export interface Annotations {
  /** The workflow commands to print, errors first, at most {@link ANNOTATION_LIMIT} of each kind. */
  lines: string[];
  /** Findings left out of `lines` by the limit. */
  notShown: number;
}

/** The findings as annotations, errors first, in check's order within each kind, cut at GitHub's limit. */
export function annotations(findings: readonly Finding[]): Annotations {
  const sorted = [...findings].sort((a, b) => RANK[a.severity] - RANK[b.severity]);
  const count = { error: 0, warning: 0, note: 0 };
  const lines: string[] = [];
  for (const f of sorted) {
    if (++count[f.severity] <= ANNOTATION_LIMIT) lines.push(annotation(f));
  }
  return { lines, notShown: findings.length - lines.length };
}

/** A table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

/**
 * The step summary's section: the counts, a table of every finding (errors first), and how
 * many the annotations left out.
 */
export function stepSummary(findings: readonly Finding[], headline: string, notShown: number): string {
  const sorted = [...findings].sort((a, b) => RANK[a.severity] - RANK[b.severity]);
  const lines = ['## sql-migrate check', '', headline, ''];
  if (sorted.length > 0) {
    lines.push('| code | severity | file:line | message |', '| --- | --- | --- | --- |');
    for (const f of sorted) {
      const where = f.line === undefined ? f.file : `${f.file}:${f.line}`;
      lines.push(`| \`${f.code}\` | ${f.severity} | \`${cell(where)}\` | ${cell(f.message)} |`);
    }
    lines.push('');
  }
  if (notShown > 0) {
    lines.push(
      `${notShown} more not shown as annotations (GitHub shows at most ${ANNOTATION_LIMIT} errors and ${ANNOTATION_LIMIT} warnings per step); the table above lists every finding.`,
      '',
    );
  }
  return `${lines.join('\n')}\n`;
}
