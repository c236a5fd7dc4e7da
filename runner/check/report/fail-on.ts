/**
 * `--fail-on=error|warning|never`: which findings make `check` fail (exit 1). Notes never do.
 *
 * @module
 */
import type { Finding } from '../lint.ts';

export const FAIL_ON = ['error', 'warning', 'never'] as const;
export type FailOn = (typeof FAIL_ON)[number];

/** Whether these findings fail the run at this threshold. */
export function fails(findings: readonly Finding[], failOn: FailOn): boolean {
  if (failOn === 'never') return false;
  return findings.some((f) => f.severity === 'error' || (failOn === 'warning' && f.severity === 'warning'));
}
