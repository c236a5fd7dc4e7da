/**
 * `check --format=gitlab`: GitLab Code Quality JSON, which GitLab shows in the merge request
 * when a job publishes it as `artifacts: reports: codequality`.
 * https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format
 *
 * Severity: an error (check exits 1) is `critical`, a warning `minor`, a note `info`
 * (docs/ci.md says so too).
 *
 * @module
 */
import type { Finding } from '../lint.ts';

export const GITLAB_SEVERITY = { error: 'critical', warning: 'minor', note: 'info' } as const;

export interface CodeQualityItem {
  description: string;
  check_name: string;
  fingerprint: string;
  severity: (typeof GITLAB_SEVERITY)[keyof typeof GITLAB_SEVERITY];
  location: { path: string; lines: { begin: number } };
}

/** One item per finding; `fingerprints[i]` (unique in the list) belongs to `findings[i]`. */
export function codeQuality(findings: readonly Finding[], fingerprints: readonly string[]): CodeQualityItem[] {
  return findings.map((f, i) => ({
    description: `${f.message} [${f.code}]`,
    check_name: f.code,
    fingerprint: fingerprints[i] as string,
    severity: GITLAB_SEVERITY[f.severity],
    // A finding about a whole file (a lone half, a stale schema file) points at its first line.
    location: { path: f.file, lines: { begin: f.line ?? 1 } },
  }));
}
