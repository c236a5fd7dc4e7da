/** The bench's printed output: a full table per workload, then a ratios-only summary and the targets. */
import type { Row, Workload } from './engine.ts';
import { BOUND, OURS, OURS_TSX } from './workloads.ts';

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const x = (v: number) => `${v.toFixed(2)}×`;
const mib = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(1));

export function fullTable(rows: readonly Row[]): string {
  const out = [
    '| workload | command | runs | median ms | min ms | max ms | × floor (median, min–max) | peak RSS MiB |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const w = r.workload.title;
    if (r.error || !r.time) {
      out.push(`| ${w} | ${r.contender.label} | ${r.runs} | failed | | | | |`);
      continue;
    }
    const ratio =
      r.contender.role === 'floor'
        ? '1 (floor)'
        : r.ratio
          ? `${x(r.ratio.median)} (${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)})`
          : '';
    out.push(
      `| ${w} | ${r.contender.label} | ${r.runs} | ${ms(r.time.median)} | ${ms(r.time.min)} | ${ms(r.time.max)} | ${ratio} | ${mib(r.rssMiB)} |`,
    );
  }
  return out.join('\n');
}

/** One line per workload, ratios only: what docs/performance.md shows. */
export function summaryTable(byWorkload: ReadonlyArray<{ workload: Workload; rows: Row[] }>): string {
  const out = [
    '| workload | floor | sql-migrate, compiled | sql-migrate, tsx | lower bound in node | peers (ratio to the floor) | sql-migrate peak RSS |',
    '|---|---|---:|---:|---:|---|---:|',
  ];
  for (const { workload, rows } of byWorkload) {
    const floor = rows.find((r) => r.contender.role === 'floor');
    const find = (label: string) => rows.find((r) => r.contender.label === label);
    const cell = (r: Row | undefined) => (!r ? '–' : r.ratio ? x(r.ratio.median) : 'failed');
    const peers = rows
      .filter((r) => r.contender.role === 'peer')
      .map((r) => `${r.contender.label} ${cell(r)}`)
      .join(', ');
    const floorLabel = floor ? floor.contender.label.replace(/^floor: /, '') : '–';
    out.push(
      `| ${workload.title} | ${floorLabel} | ${cell(find(OURS))} | ${cell(find(OURS_TSX))} | ${cell(find(BOUND))} | ${peers || '–'} | ${mib(find(OURS)?.rssMiB)} MiB |`,
    );
  }
  return out.join('\n');
}

export function verdicts(byWorkload: ReadonlyArray<{ workload: Workload; rows: Row[] }>): string {
  const out: string[] = [];
  for (const { workload, rows } of byWorkload) {
    for (const t of workload.targets) {
      const r = rows.find((row) => row.contender.label === t.label);
      if (!r?.ratio) {
        out.push(`- ${workload.title}: ${t.label}: not measured`);
        continue;
      }
      if (t.maxRatio !== undefined) {
        const b = rows.find((row) => row.contender.label === BOUND)?.ratio;
        const reach =
          b === undefined
            ? ''
            : b.median > t.maxRatio
              ? ` (out of reach here: the lower bound is already ${x(b.median)})`
              : ` (lower bound ${x(b.median)})`;
        out.push(
          `- ${workload.title}: ${x(r.ratio.median)} of the floor, target ≤ ${x(t.maxRatio)}: ${r.ratio.median <= t.maxRatio ? 'met' : 'MISSED'}${reach}`,
        );
      }
      if (t.maxRssMiB !== undefined) {
        const v = r.rssMiB;
        out.push(
          `- ${workload.title}: peak RSS ${mib(v)} MiB, target < ${t.maxRssMiB} MiB: ${v === undefined ? 'not measured (needs GNU time)' : v < t.maxRssMiB ? 'met' : 'MISSED'}`,
        );
      }
    }
    const dist = rows.find((r) => r.contender.label === OURS);
    for (const r of rows.filter((row) => row.contender.role === 'ours' && row.contender.label !== OURS)) {
      if (dist?.time && r.time)
        out.push(
          `- ${workload.title}: ${r.contender.label.replace(/^sql-migrate: /, '')} costs ${ms(r.time.median - dist.time.median)} ms more than the compiled start (median)`,
        );
    }
  }
  return out.join('\n');
}
