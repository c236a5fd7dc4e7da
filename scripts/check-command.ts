/**
 * `check` on the command line: run it, then report in the format asked for (`--format`, or
 * GitHub's when GITHUB_ACTIONS=true) and exit by `--fail-on`. The formats themselves are pure
 * functions of the findings in runner/check/report/; this file reads the environment they need
 * (GITHUB_*, $GITHUB_STEP_SUMMARY) and writes.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EXIT, formatWhere, MigrateError } from '../runner/core/errors.ts';
import type { CheckResult } from '../runner/check/check.ts';
import { FAIL_ON, type FailOn, fails } from '../runner/check/report/fail-on.ts';
import { type Cli, checkSummary, emitJson, progressLine, say, warn } from './output.ts';
import type { Format, Values } from './options.ts';

function failOnOf(values: Values): FailOn {
  const given = values['fail-on'] ?? 'error';
  if (!(FAIL_ON as readonly string[]).includes(given))
    throw new MigrateError('BAD_OPTION', `--fail-on takes ${FAIL_ON.join(', ')}, not "${given}".`);
  return given as FailOn;
}

/** The runner's root (where its package.json and docs/ are), from the script that runs. */
function runnerRoot(): { root?: string; version: string } {
  let dir = dirname(resolve(process.argv[1] ?? '.'));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'sql-migrate') return { root: dir, version: pkg.version ?? 'unknown' };
      } catch {}
    }
    const up = dirname(dir);
    if (up === dir) return { version: 'unknown' };
    dir = up;
  }
}

/**
 * Where SARIF's links point: the docs in the repository on GitHub when the runner is checked out
 * in the workflow's repository, else the docs on this disk.
 */
function docsUrl(page: string, env: NodeJS.ProcessEnv, root: string | undefined): string {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_SHA: sha, GITHUB_WORKSPACE: workspace } = env;
  if (root && server && repo && sha && workspace) {
    const inside = relative(resolve(workspace), root);
    // Installed as a package (node_modules/), the runner's docs are not in the repository.
    if (!inside.startsWith('..') && !inside.split(sep).includes('node_modules'))
      return `${server}/${repo}/blob/${sha}/${inside ? `${inside}/` : ''}docs/${page}`;
  }
  return pathToFileURL(join(root ?? process.cwd(), 'docs', page)).href;
}

/** Run check with its options and report; the exit code follows --fail-on. */
export async function runCheckCommand(
  cli: Cli,
  config: { url?: string; dir?: string; table?: string },
  values: Values,
  format: Format,
  data: false | { seed?: number; rows?: number },
  signal: AbortSignal,
): Promise<number> {
  const failOn = failOnOf(values);
  const { check } = await import('../runner/check/check.ts');
  let result: CheckResult;
  try {
    result = await check(
      {
        url: config.url,
        dir: config.dir,
        table: config.table,
        data,
        ...(values.base === undefined ? {} : { base: values.base }),
        ...(values.compat === undefined ? {} : { compat: values.compat }),
      },
      // A progress line only on a terminal (stderr): rewritten in place, cleared before the findings.
      { signal, ...(process.stderr.isTTY === true ? { onProgress: (e) => progressLine(cli, e) } : {}) },
    );
    if (process.stderr.isTTY === true) process.stderr.write('\r\x1b[K');
  } catch (error) {
    // Under GitHub Actions a refusal (an unknown --base ref, no folder) is an annotation too;
    // the error is then reported as usual (stderr, exit code).
    if (format === 'github' && error instanceof MigrateError) {
      const { workflowCommand } = await import('../runner/check/report/github.ts');
      const line = workflowCommand({ kind: 'error', ...error.where, title: error.code, message: error.reason });
      process.stdout.write(`${line}\n`);
    }
    throw error;
  }
  const code = fails(result.findings, failOn) ? EXIT.migrationFailed : EXIT.ok;
  const used = result.roundTrips
    .filter((t) => t.dialect === 'postgres' && t.database)
    .map((t) => `check: postgres on ${t.database}`);
  const summary = [...used, checkSummary(result)].join('\n');
  if (format === 'json') emitJson(cli, { command: 'check', ...result });
  else if (format === 'text') {
    for (const f of result.findings) say(cli, `${formatWhere(f)}: ${f.severity}: ${f.message} [${f.code}]`);
    say(cli, summary);
  } else {
    process.stdout.write(await render(format, result, summary));
    // The counts still reach the log (stderr: stdout holds the format alone).
    warn(cli, summary);
  }
  return code;
}

async function render(format: 'github' | 'sarif' | 'gitlab', result: CheckResult, summary: string): Promise<string> {
  if (format === 'github') {
    const { annotations, stepSummary } = await import('../runner/check/report/github.ts');
    const shown = annotations(result.findings);
    const file = process.env.GITHUB_STEP_SUMMARY;
    try {
      if (file) appendFileSync(file, stepSummary(result.findings, summary.replace(/\n/g, '  \n'), shown.notShown));
    } catch (error) {
      // The annotations still tell; a summary that cannot be written is no reason to fail.
      process.stderr.write(
        `warning: could not append to $GITHUB_STEP_SUMMARY (${file}): ${(error as Error).message}\n`,
      );
    }
    return shown.lines.map((l) => `${l}\n`).join('');
  }
  const { fingerprints } = await import('../runner/check/report/fingerprint.ts');
  const prints = fingerprints(result.findings);
  if (format === 'gitlab') {
    const { codeQuality } = await import('../runner/check/report/gitlab.ts');
    return `${JSON.stringify(codeQuality(result.findings, prints), null, 2)}\n`;
  }
  const { sarifLog } = await import('../runner/check/report/sarif.ts');
  const { root, version } = runnerRoot();
  const tool = {
    name: 'sql-migrate',
    version,
    informationUri: docsUrl('check.md', process.env, root),
    helpUri: `${docsUrl('errors.md', process.env, root)}#check-findings`,
  };
  return `${JSON.stringify(sarifLog(result.findings, prints, tool), null, 2)}\n`;
}
