/**
 * Runs a workload: every contender once per run, the floor among them, in an order that
 * rotates from run to run so drift (page cache, autovacuum, a noisy neighbour) falls on all of
 * them alike. A contender's ratio is the median over runs of its time divided by the floor's
 * time in the same run.
 */
import { CommandFailed, stats, timeOnce, type Command, type Stats } from './measure.ts';

export interface Contender {
  label: string;
  /** bound: the least a node program can do here while keeping the runner's promises (bounds.cjs). */
  role: 'floor' | 'ours' | 'peer' | 'bound';
  command: Command;
  /** Untimed, before each timed run: a fresh database, a copy of a template. */
  setup?: () => void;
  /** Fewer timed runs than the workload's (a very long command); it then runs in the first ones. */
  runs?: number;
}

export interface Target {
  /** The contender the target is about. */
  label: string;
  maxRatio?: number;
  maxRssMiB?: number;
}

export interface Workload {
  id: string;
  title: string;
  runs: number;
  /** One untimed run of each contender first (short workloads: loads the page cache evenly). */
  warmup: boolean;
  contenders: Contender[];
  targets: Target[];
  /** Contenders that could not take part, and why. */
  skipped: string[];
}

export interface Row {
  workload: Workload;
  contender: Contender;
  time?: Stats;
  ratio?: Stats;
  rssMiB?: number;
  runs: number;
  error?: string;
}

function attempt(c: Contender): { ms: number; rssKiB: number | undefined } {
  c.setup?.();
  return timeOnce(c.command);
}

export function runWorkload(w: Workload, progress: (text: string) => void): Row[] {
  const rows: Row[] = w.contenders.map((contender) => ({ workload: w, contender, runs: 0 }));
  const samples = w.contenders.map(() => [] as Array<{ run: number; ms: number; rssKiB: number | undefined }>);
  const fail = (i: number, error: unknown) => {
    const row = rows[i] as Row;
    if (!(error instanceof CommandFailed)) throw error;
    row.error = error.message;
    progress(`  ${row.contender.label}: FAILED\n${error.message.replace(/^/gm, '    ')}`);
  };
  if (w.warmup) {
    w.contenders.forEach((c, i) => {
      if ((c.runs ?? w.runs) < w.runs) return;
      try {
        attempt(c);
      } catch (error) {
        fail(i, error);
      }
    });
  }
  for (let run = 0; run < w.runs; run++) {
    const n = w.contenders.length;
    for (let k = 0; k < n; k++) {
      const i = (run + k) % n;
      const c = w.contenders[i] as Contender;
      if ((rows[i] as Row).error || run >= (c.runs ?? w.runs)) continue;
      try {
        const s = attempt(c);
        (samples[i] as Array<{ run: number; ms: number; rssKiB: number | undefined }>).push({ run, ...s });
      } catch (error) {
        fail(i, error);
      }
    }
    progress(`  ${w.id}: run ${run + 1}/${w.runs} done`);
  }
  const floorIndex = w.contenders.findIndex((c) => c.role === 'floor');
  const floorByRun = new Map((samples[floorIndex] ?? []).map((s) => [s.run, s.ms]));
  rows.forEach((row, i) => {
    const mine = samples[i] as Array<{ run: number; ms: number; rssKiB: number | undefined }>;
    row.runs = mine.length;
    if (mine.length === 0) return;
    row.time = stats(mine.map((s) => s.ms));
    const ratios = mine.filter((s) => floorByRun.has(s.run)).map((s) => s.ms / (floorByRun.get(s.run) as number));
    if (ratios.length > 0) row.ratio = stats(ratios);
    const rss = mine.map((s) => s.rssKiB).filter((v): v is number => v !== undefined);
    if (rss.length > 0) row.rssMiB = Math.max(...rss) / 1024;
  });
  return rows;
}
