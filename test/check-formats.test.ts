/**
 * `check --format=github|sarif|gitlab`, `--fail-on` and `--base`, run as a user runs them. The
 * findings of `--format=json` on the same folder are the reference every format is held to.
 *
 * The folders are SQLite-only (no PostgreSQL needed, so these run everywhere): a folder whose
 * name holds a comma, with 16 no-transaction files of two statements (16 NO_TRANSACTION_MULTI
 * warnings, each at a line and column) and 3 transactional files running VACUUM (3
 * NEEDS_NO_TRANSACTION errors). The SARIF output is validated against the vendored SARIF 2.1.0
 * schema (test/fixtures/sarif-schema/) with ajv.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { ROOT, runCli, type CliResult } from './support/cli.ts';
import type { Finding } from '../runner/check/check.ts';
import { escapeData, escapeProperty } from '../runner/check/report/github.ts';
import { fingerprints } from '../runner/check/report/fingerprint.ts';

const DIR = 'mig,rations';

/** A temp working directory holding `mig,rations/sqlite/`: `warnings` two-statement no-transaction files, then `errors` VACUUM files. */
function folder(warnings: number, errors: number): { cwd: string; sqlite: string; cleanup(): void } {
  const cwd = mkdtempSync(join(tmpdir(), 'mig-formats-'));
  const sqlite = join(cwd, DIR, 'sqlite');
  mkdirSync(sqlite, { recursive: true });
  const stem = (n: number, what: string) => `${String(n).padStart(6, '0')}_${what}${n}`;
  for (let n = 1; n <= warnings; n++) {
    const s = stem(n, 'multi');
    writeFileSync(
      join(sqlite, `${s}.up.sql`),
      `-- migrate:no-transaction\nCREATE TABLE t${n} (id INTEGER);\nCREATE INDEX ix_t${n} ON t${n} (id);\n`,
    );
    writeFileSync(join(sqlite, `${s}.down.sql`), `DROP TABLE t${n};\n`);
  }
  for (let n = warnings + 1; n <= warnings + errors; n++) {
    const s = stem(n, 'vacuum');
    writeFileSync(join(sqlite, `${s}.up.sql`), `CREATE TABLE u${n} (id INTEGER);\nVACUUM;\n`);
    writeFileSync(join(sqlite, `${s}.down.sql`), `DROP TABLE u${n};\n`);
  }
  return { cwd, sqlite, cleanup: () => rmSync(cwd, { recursive: true, force: true }) };
}

const NO_CI = { GITHUB_ACTIONS: undefined, GITHUB_STEP_SUMMARY: undefined, GITLAB_CI: undefined };

function check(cwd: string, extra: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(['check', '--dir', DIR, '--url', 'sqlite::memory:', '--no-data', ...extra], {
    cwd,
    env: { ...NO_CI, ...env },
  });
}

/** The reference: the findings of `--format=json` on the same folder. */
async function reference(cwd: string): Promise<Finding[]> {
  const r = await check(cwd, ['--format=json']);
  const out = JSON.parse(r.stdout) as { findings: Finding[] };
  return out.findings;
}

function parseCommand(line: string): { kind: string; props: Record<string, string>; message: string } {
  const m = /^::(error|warning|notice) ([^:]*)::(.*)$/.exec(line);
  assert.ok(m, `not a workflow command: ${line}`);
  const props = Object.fromEntries((m[2] as string).split(',').map((p) => p.split('=') as [string, string]));
  return { kind: m[1] as string, props, message: m[3] as string };
}

/** GitHub's escaping, written out as its docs give it, to hold the output to. */
const asProperty = (s: string) =>
  s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/:/g, '%3A').replace(/,/g, '%2C');
const asData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const KIND = { error: 'error', warning: 'warning', note: 'notice' } as const;

describe('check --format=github', () => {
  it('3 errors and 16 warnings in a folder named with a comma: 3 ::error then 10 ::warning, each a finding; the step summary holds all 19 and "6 more"', async () => {
    const f = folder(16, 3);
    try {
      const findings = await reference(f.cwd);
      assert.equal(findings.filter((x) => x.severity === 'error').length, 3, JSON.stringify(findings, null, 1));
      assert.equal(findings.filter((x) => x.severity === 'warning').length, 16);
      assert.equal(findings.length, 19);

      const summary = join(f.cwd, 'summary.md');
      const r = await check(f.cwd, ['--format=github'], { GITHUB_STEP_SUMMARY: summary });
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      const commands = lines.map(parseCommand);
      assert.deepEqual(
        commands.map((c) => c.kind),
        [...Array(3).fill('error'), ...Array(10).fill('warning')],
      );
      const used = new Set<number>();
      for (const c of commands) {
        assert.match(c.props.file as string, /^mig%2Crations\/sqlite\//);
        const i = findings.findIndex(
          (x, k) =>
            !used.has(k) &&
            KIND[x.severity] === c.kind &&
            asProperty(x.file) === c.props.file &&
            String(x.line) === c.props.line &&
            String(x.column) === c.props.col &&
            x.code === c.props.title &&
            asData(x.message) === c.message,
        );
        assert.ok(i >= 0, `no finding for ${JSON.stringify(c)}`);
        used.add(i);
      }
      assert.match(r.stderr, /check: 3 errors, 16 warnings/);

      const md = readFileSync(summary, 'utf8');
      const rows = md.split('\n').filter((l) => /^\| `[A-Z_]+` \|/.test(l));
      assert.equal(rows.length, 19);
      for (const x of findings)
        assert.ok(rows.some((row) => row.includes(`\`${x.code}\` | ${x.severity} | \`${x.file}:${x.line}\``)));
      assert.match(md, /^6 more not shown as annotations/m);

      // GITHUB_ACTIONS=true without the flag: the same annotations, the same summary.
      const summary2 = join(f.cwd, 'summary2.md');
      const onActions = await check(f.cwd, [], { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary2 });
      assert.equal(onActions.code, 1);
      assert.equal(onActions.stdout, r.stdout);
      assert.equal(readFileSync(summary2, 'utf8'), md);
    } finally {
      f.cleanup();
    }
  });

  it("escapes as GitHub's toolkit does: %, CR and LF in messages; also : and , in properties", () => {
    assert.equal(escapeData('100% done\r\nnext: a,b'), '100%25 done%0D%0Anext: a,b');
    assert.equal(escapeProperty('a,b/c:d%\n'), 'a%2Cb/c%3Ad%25%0A');
  });
});

describe('check --format=sarif', () => {
  const schema = JSON.parse(
    readFileSync(join(ROOT, 'test', 'fixtures', 'sarif-schema', 'sarif-schema-2.1.0.json'), 'utf8'),
  ) as object;
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormatsModule as unknown as (a: Ajv) => void)(ajv);
  const validator = ajv.compile(schema);
  /** Whether `log` is valid SARIF 2.1.0 (ajv's errors in `validator.errors` when not). */
  const validate = (log: unknown): boolean => validator(log);

  interface Result {
    ruleId: string;
    level: string;
    partialFingerprints: Record<string, string>;
    locations: Array<{
      physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number; startColumn?: number } };
    }>;
  }
  const resultsOf = (log: { runs: Array<{ results: Result[] }> }) => (log.runs[0] as { results: Result[] }).results;
  const prints = (log: { runs: Array<{ results: Result[] }> }) =>
    resultsOf(log).map((r) => Object.values(r.partialFingerprints).join());

  it('is valid SARIF 2.1.0 with a result per finding (rule, level, uri, line), and fingerprints that survive a re-run and a line inserted above', async () => {
    const f = folder(16, 3);
    try {
      const findings = await reference(f.cwd);
      const first = await check(f.cwd, ['--format=sarif']);
      assert.equal(first.code, 1);
      const log = JSON.parse(first.stdout);
      assert.ok(validate(log), JSON.stringify(validator.errors, null, 1));
      assert.equal(log.version, '2.1.0');
      assert.equal(typeof log.$schema, 'string');
      const driver = log.runs[0].tool.driver;
      assert.equal(driver.name, 'sql-migrate');
      assert.deepEqual(
        driver.rules.map((r: { id: string }) => r.id),
        [...new Set(findings.map((x) => x.code))].sort(),
      );
      for (const rule of driver.rules) assert.match(rule.helpUri, /errors\.md#check-findings$/);

      const results = resultsOf(log);
      assert.equal(results.length, findings.length);
      results.forEach((r, i) => {
        const x = findings[i] as Finding;
        assert.equal(r.ruleId, x.code);
        assert.equal(r.level, x.severity);
        const at = r.locations[0]?.physicalLocation;
        assert.equal(decodeURIComponent(at?.artifactLocation.uri as string), x.file);
        assert.equal(at?.region?.startLine, x.line);
        assert.equal(at?.region?.startColumn, x.column);
      });

      const second = JSON.parse((await check(f.cwd, ['--format=sarif'])).stdout);
      assert.deepEqual(prints(second), prints(log));
      assert.equal(new Set(prints(log)).size, findings.length);

      // A blank first line in one file: its finding moves down a line, and keeps its fingerprint.
      const moved = findings.findIndex((x) => x.code === 'NEEDS_NO_TRANSACTION');
      const file = join(f.cwd, (findings[moved] as Finding).file);
      writeFileSync(file, `\n${readFileSync(file, 'utf8')}`);
      const third = JSON.parse((await check(f.cwd, ['--format=sarif'])).stdout);
      const line = (l: typeof log, i: number) => resultsOf(l)[i]?.locations[0]?.physicalLocation.region?.startLine;
      assert.equal(line(third, moved), (line(log, moved) as number) + 1);
      assert.deepEqual(prints(third), prints(log));
    } finally {
      f.cleanup();
    }
  });

  it("links the rules to the docs in the workflow's repository under GitHub Actions, else to the docs on disk", async () => {
    const f = folder(1, 0);
    try {
      const env = {
        GITHUB_SERVER_URL: 'https://github.example',
        GITHUB_REPOSITORY: 'team/bot',
        GITHUB_SHA: 'abc123',
        GITHUB_WORKSPACE: ROOT,
      };
      const onActions = JSON.parse((await check(f.cwd, ['--format=sarif'], env)).stdout);
      assert.ok(validate(onActions), JSON.stringify(validator.errors, null, 1));
      const driver = onActions.runs[0].tool.driver;
      assert.equal(driver.informationUri, 'https://github.example/team/bot/blob/abc123/docs/check.md');
      assert.equal(
        driver.rules[0].helpUri,
        'https://github.example/team/bot/blob/abc123/docs/errors.md#check-findings',
      );
      const local = JSON.parse((await check(f.cwd, ['--format=sarif'])).stdout).runs[0].tool.driver;
      assert.equal(local.rules[0].helpUri, `${pathToFileURL(join(ROOT, 'docs', 'errors.md')).href}#check-findings`);
      assert.equal(local.version, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
    } finally {
      f.cleanup();
    }
  });

  it('the validator catches a log that breaks the schema', () => {
    const broken = {
      version: '2.1.0',
      runs: [{ tool: { driver: { name: 'x' } }, results: [{ message: { text: 'm' }, level: 'fatal' }] }],
    };
    assert.equal(validate(broken), false);
  });

  it('fingerprints hash the statement, not the line: the finding two lines lower keeps its print, another statement does not', () => {
    const file = 'x/sqlite/000001_a.up.sql';
    const text = 'CREATE TABLE a (id int);\nVACUUM;\n';
    const at = (line: number): Finding => ({
      severity: 'error',
      code: 'NEEDS_NO_TRANSACTION',
      file,
      line,
      column: 1,
      message: 'm',
    });
    const print = (finding: Finding, body: string) =>
      fingerprints([finding], (p) => (p === file ? body : undefined))[0];
    const before = print(at(2), text);
    assert.equal(print(at(4), `\n\n${text}`), before);
    assert.notEqual(print(at(2), 'CREATE TABLE a (id int);\nVACUUM FULL;\n'), before);
    assert.notEqual(print({ ...at(2), file: 'y/sqlite/000001_a.up.sql' }, text), before);
    const twice = fingerprints([at(2), at(2)], () => text);
    assert.notEqual(twice[0], twice[1]);
  });
});

describe('check --format=gitlab', () => {
  it('one Code Quality item per finding, with unique fingerprints', async () => {
    const f = folder(16, 3);
    try {
      const findings = await reference(f.cwd);
      const r = await check(f.cwd, ['--format=gitlab']);
      assert.equal(r.code, 1);
      const items = JSON.parse(r.stdout) as Array<{
        description: string;
        check_name: string;
        fingerprint: string;
        severity: string;
        location: { path: string; lines: { begin: number } };
      }>;
      assert.equal(items.length, findings.length);
      assert.equal(new Set(items.map((i) => i.fingerprint)).size, items.length);
      const severity = { error: 'critical', warning: 'minor', note: 'info' };
      items.forEach((item, i) => {
        const x = findings[i] as Finding;
        assert.equal(item.check_name, x.code);
        assert.equal(item.severity, severity[x.severity]);
        assert.equal(item.location.path, x.file);
        assert.equal(item.location.lines.begin, x.line ?? 1);
        assert.ok(item.description.includes(x.message));
      });
    } finally {
      f.cleanup();
    }
  });
});

describe('check --fail-on', () => {
  it('warnings only: 0 by default, 1 with warning; errors with never: 0; an unknown value: 2', async () => {
    const warnings = folder(2, 0);
    const errors = folder(0, 1);
    try {
      const plain = await check(warnings.cwd, []);
      assert.match(plain.stdout, /check: 0 errors, 2 warnings/);
      assert.equal(plain.code, 0, plain.stdout);
      assert.equal((await check(warnings.cwd, ['--fail-on=warning'])).code, 1);
      assert.equal((await check(warnings.cwd, ['--fail-on=error'])).code, 0);
      assert.equal((await check(errors.cwd, [])).code, 1);
      assert.equal((await check(errors.cwd, ['--fail-on=never'])).code, 0);
      const bad = await check(warnings.cwd, ['--fail-on=x']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--fail-on takes error, warning, never, not "x"/);
      const badFormat = await check(warnings.cwd, ['--format=xml']);
      assert.equal(badFormat.code, 2);
    } finally {
      warnings.cleanup();
      errors.cleanup();
    }
  });
});

describe('check --base', () => {
  const gitEnv = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_SYSTEM: '/dev/null' };
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], {
      cwd,
      env: gitEnv,
      stdio: 'pipe',
    });
  const revision = (dir: string, n: number) => {
    const s = `${String(n).padStart(6, '0')}_r${n}`;
    writeFileSync(join(dir, `${s}.up.sql`), `CREATE TABLE r${n} (id INTEGER);\n`);
    writeFileSync(join(dir, `${s}.down.sql`), `DROP TABLE r${n};\n`);
  };
  /** A repository whose main has revisions 1 and 20, on a branch `feature` with nothing added yet. */
  function repo(): { cwd: string; sqlite: string; cleanup(): void } {
    const cwd = mkdtempSync(join(tmpdir(), 'mig-base-'));
    const sqlite = join(cwd, 'sql', 'sqlite');
    mkdirSync(sqlite, { recursive: true });
    git(cwd, 'init', '-q', '-b', 'main');
    revision(sqlite, 1);
    revision(sqlite, 20);
    git(cwd, 'add', '.');
    git(cwd, 'commit', '-q', '-m', 'main');
    git(cwd, 'checkout', '-q', '-b', 'feature');
    return { cwd, sqlite, cleanup: () => rmSync(cwd, { recursive: true, force: true }) };
  }
  const run = (cwd: string, ...extra: string[]) =>
    runCli(['check', '--dir', 'sql', '--url', 'sqlite::memory:', '--no-data', ...extra], { cwd, env: NO_CI });

  it('a branch that adds 15 after main has 20: ORDER_CONFLICT naming both, exit 1; uncommitted too', async () => {
    const r = repo();
    try {
      revision(r.sqlite, 15);
      const uncommitted = await run(r.cwd, '--base=main');
      assert.equal(uncommitted.code, 1, uncommitted.stdout + uncommitted.stderr);
      git(r.cwd, 'add', '.');
      git(r.cwd, 'commit', '-q', '-m', 'add 15');
      const res = await run(r.cwd, '--base=main', '--json');
      assert.equal(res.code, 1);
      const conflicts = (JSON.parse(res.stdout).findings as Finding[]).filter((x) => x.code === 'ORDER_CONFLICT');
      assert.equal(conflicts.length, 1);
      const c = conflicts[0] as Finding;
      assert.equal(c.severity, 'error');
      assert.equal(c.file, 'sql/sqlite/000015_r15.up.sql');
      assert.match(c.message, /000015 \(000015_r15\).*000020 \(000020_r20\)/);
      assert.match(c.message, /`new r15`/);
      // Without --base the folder is fine: the conflict comes from the comparison alone.
      assert.equal((await run(r.cwd)).code, 0);
    } finally {
      r.cleanup();
    }
  });

  it('a branch that adds 25 instead: no conflict, exit 0', async () => {
    const r = repo();
    try {
      revision(r.sqlite, 25);
      git(r.cwd, 'add', '.');
      git(r.cwd, 'commit', '-q', '-m', 'add 25');
      const res = await run(r.cwd, '--base=main');
      assert.equal(res.code, 0, res.stdout + res.stderr);
      assert.doesNotMatch(res.stdout, /ORDER_CONFLICT/);
    } finally {
      r.cleanup();
    }
  });

  it('an unknown ref, or a folder outside a git repository: exit 2 with the reason', async () => {
    const r = repo();
    const plain = folder(1, 0);
    try {
      const unknown = await run(r.cwd, '--base=no-such-branch');
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /--base=no-such-branch: no such commit.*\[BAD_BASE\]/s);
      // Under GitHub Actions the refusal is an annotation as well.
      const onActions = await runCli(['check', '--dir', 'sql', '--url', 'sqlite::memory:', '--base=no-such-branch'], {
        cwd: r.cwd,
        env: { ...NO_CI, GITHUB_ACTIONS: 'true' },
      });
      assert.equal(onActions.code, 2);
      assert.match(onActions.stdout, /^::error title=BAD_BASE::--base=no-such-branch: no such commit/);
      const outside = await check(plain.cwd, ['--base=main']);
      assert.equal(outside.code, 2);
      assert.match(outside.stderr, /is not in a git repository.*\[BAD_BASE\]/s);
    } finally {
      r.cleanup();
      plain.cleanup();
    }
  });
});
