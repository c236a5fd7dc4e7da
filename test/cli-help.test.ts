/**
 * The CLI's help and usage errors as a new user meets them (issue #26): a help text per command,
 * `help` as a command, "did you mean" for a mistyped command or option before anything is opened
 * or created, our own option messages, errors as JSON with --json, and check's progress line on
 * a terminal only.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTerminal, runCli } from './support/cli.ts';
import { HELP } from '../scripts/help.ts';

/** An empty working directory: whatever the CLI creates there shows. */
function emptyDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'cli-help-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('help', () => {
  it('each command has its own --help text, the same as `help <command>`, naming only its options', async () => {
    const texts = new Set<string>();
    for (const name of Object.keys(HELP).filter((n) => n !== 'migrate' && n !== 'help')) {
      const viaFlag = await runCli([name, '--help']);
      const viaCommand = await runCli(['help', name]);
      assert.equal(viaFlag.code, 0, viaFlag.stderr);
      assert.equal(viaFlag.stdout, viaCommand.stdout);
      assert.match(viaFlag.stdout, new RegExp(`^Usage: npx tsx scripts/migrate\\.ts ${name}\\b`));
      texts.add(viaFlag.stdout);
    }
    assert.equal(texts.size, Object.keys(HELP).length - 2, 'every command its own text');
    const check = await runCli(['check', '--help']);
    assert.match(check.stdout, /--no-data/);
    assert.doesNotMatch(check.stdout, /--lock-timeout|--dry-run/);
    const current = await runCli(['current', '--help']);
    assert.doesNotMatch(current.stdout, /--no-data|--write/);
  });

  it('targets share one text: head --help, -1 --help and help head', async () => {
    const head = await runCli(['head', '--help']);
    assert.equal(head.code, 0);
    assert.match(head.stdout, /^Usage: npx tsx scripts\/migrate\.ts <target> \[options\]/);
    assert.match(head.stdout, /--dry-run/);
    assert.equal((await runCli(['-1', '--help'])).stdout, head.stdout);
    assert.equal((await runCli(['help', 'head'])).stdout, head.stdout);
  });

  it('`help` alone is the overview on stdout, exit 0; no line of it is wider than 100 columns', async () => {
    const r = await runCli(['help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: /);
    assert.match(r.stdout, /Exit codes: 0 done, 1 a migration failed/);
    for (const line of r.stdout.split('\n')) assert.ok(line.length <= 100, line);
    // The exit codes wrap at words, not in the middle of "validation error".
    assert.match(r.stdout, /2 usage or validation error \(nothing changed\)/);
  });
});

describe('usage errors come before anything is opened or created', () => {
  it('a mistyped command: did you mean, exit 2, no database file and no lock file', async () => {
    const cwd = emptyDir();
    try {
      for (const [typo, meant] of [
        ['histroy', 'history'],
        ['curent', 'current'],
        ['chekc', 'check'],
        ['haed', 'head'],
      ] as const) {
        const r = await runCli([typo], { cwd: cwd.dir });
        assert.equal(r.code, 2, typo);
        assert.match(r.stderr, new RegExp(`unknown command "${typo}"\\. Did you mean "${meant}"\\?`));
        assert.match(r.stderr, /\[BAD_TARGET\]/);
      }
      assert.deepEqual(readdirSync(cwd.dir), []);
    } finally {
      cwd.cleanup();
    }
  });

  it('`help <unknown>` exits 2 naming the commands; `help histroy` guesses', async () => {
    const r = await runCli(['help', 'histroy']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no command "histroy"\. Did you mean "history"\?/);
  });

  it('an unknown option: our own message with the likely option, the command’s usage line, exit 2, nothing created', async () => {
    const cwd = emptyDir();
    try {
      const r = await runCli(['head', '--dryrun'], { cwd: cwd.dir });
      assert.equal(r.code, 2);
      assert.equal(
        r.stderr,
        'error: unknown option --dryrun. Did you mean --dry-run? See `head --help`. [BAD_OPTION]\n' +
          'Usage: npx tsx scripts/migrate.ts <target> [options]\n',
      );
      const checkTypo = await runCli(['check', '--no-dat'], { cwd: cwd.dir });
      assert.match(checkTypo.stderr, /unknown option --no-dat\. Did you mean --no-data\? See `check --help`\./);
      const missing = await runCli(['head', '--url'], { cwd: cwd.dir });
      assert.match(missing.stderr, /--url needs a value: --url=VALUE\./);
      const flagValue = await runCli(['history', '--yes=1'], { cwd: cwd.dir });
      assert.match(flagValue.stderr, /--yes takes no value \("--yes=1"\)/);
      assert.deepEqual(readdirSync(cwd.dir), []);
    } finally {
      cwd.cleanup();
    }
  });

  it('with --json, usage errors are one JSON object on stdout', async () => {
    for (const args of [['histroy'], ['head', '--dryrun'], [], ['help', 'nope']]) {
      const r = await runCli([...args, '--json']);
      assert.equal(r.code, 2, args.join(' '));
      const out = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string } };
      assert.equal(out.ok, false);
      assert.match(out.error.code, /^BAD_(TARGET|OPTION)$/);
    }
  });
});

describe('check progress', () => {
  const folder = () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-progress-'));
    mkdirSync(join(dir, 'sqlite'));
    for (let i = 1; i <= 3; i++) {
      writeFileSync(
        join(dir, 'sqlite', `00000${i}_t${i}.up.sql`),
        `CREATE TABLE t${i} (id INTEGER NOT NULL PRIMARY KEY);\n`,
      );
      writeFileSync(join(dir, 'sqlite', `00000${i}_t${i}.down.sql`), `DROP TABLE t${i};\n`);
    }
    return dir;
  };

  it('shows on a terminal, on stderr; never when stderr is not one', async () => {
    const dir = folder();
    const out = join(dir, 'stdout.txt');
    try {
      const piped = await runCli(['check', '--dir', dir, '--url', 'sqlite::memory:']);
      assert.equal(piped.code, 0, piped.stderr);
      assert.doesNotMatch(piped.stderr + piped.stdout, /round trips \d+\/3|\r/);
      const tty = await onTerminal(['check', '--dir', dir, '--url', 'sqlite::memory:'], '', { stdoutTo: out });
      assert.equal(tty.code, 0, tty.out);
      assert.match(tty.out, /check: sqlite round trips 3\/3/);
      assert.match(tty.out, /check: sqlite data 3\/3/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
