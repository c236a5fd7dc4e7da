/**
 * `check --base=<git ref>`: revisions that land out of order. Two branches each add a
 * revision; the one merged later may carry the older version, and every database already at
 * the newer one would then apply it out of order (atlas#3386, postgrator#104). Compared with
 * the base's tree: a revision in the working tree (committed or not) that the base does not
 * have, whose version sorts before the newest revision the base has, is `ORDER_CONFLICT`.
 *
 * Git is read through the `git` command itself (`rev-parse`, `ls-tree`), no library.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { MigrateError } from '../core/errors.ts';
import { displayPath, listFolder, parseName, type ParsedName } from '../core/files.ts';
import type { Finding } from './lint.ts';

/** Run git in `cwd`; its stdout, or a BAD_BASE MigrateError that says `what` and git's own reason. */
function git(cwd: string, args: string[], what: string): string {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (error) {
    const e = error as { code?: string; stderr?: string };
    const said = e.code === 'ENOENT' ? 'the git command was not found' : (e.stderr ?? '').trim();
    throw new MigrateError('BAD_BASE', said ? `${what} (git: ${said})` : what);
  }
}

/** The versions the ref's tree holds in `folder` (its direct .sql files), by version. */
function versionsAt(folder: string, ref: string): { top: string; commit: string; names: Map<bigint, ParsedName> } {
  const shown = displayPath(folder);
  const top = git(
    folder,
    ['rev-parse', '--show-toplevel'],
    `--base compares with a git ref, and ${shown}/ is not in a git repository. Run check in the repository's working tree, or leave --base out`,
  ).trim();
  const commit = git(
    top,
    ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`],
    `--base=${ref}: no such commit in the repository at ${top}. Name a branch, tag or commit it has; in CI, fetch the base first (actions/checkout with fetch-depth: 0, or git fetch origin <branch>).`,
  ).trim();
  const prefix = relative(realpathSync(top), realpathSync(folder)).split(sep).join('/');
  const listed = git(
    top,
    ['ls-tree', '-r', '--name-only', '-z', commit, '--', prefix === '' ? '.' : `${prefix}/`],
    `--base=${ref}: git could not list ${shown}/ there`,
  );
  const names = new Map<bigint, ParsedName>();
  for (const path of listed.split('\0')) {
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    if (dir !== prefix) continue; // a file in a subfolder (schema/, a dialect folder below a flat one)
    const name = parseName(basename(path));
    if (name) names.set(name.version, name);
  }
  return { top, commit, names };
}

/**
 * ORDER_CONFLICT for each revision of the folders that the ref lacks and that sorts before the
 * ref's newest; one finding per revision (in the first folder that has it). Throws BAD_BASE
 * (exit 2) for an unknown ref or a folder outside a git repository.
 */
export function orderConflicts(folders: readonly string[], ref: string): Finding[] {
  const findings: Finding[] = [];
  const reported = new Set<bigint>();
  for (const folder of folders) {
    const { names: base } = versionsAt(folder, ref);
    let newest: ParsedName | undefined;
    for (const n of base.values()) if (!newest || n.version > newest.version) newest = n;
    if (!newest) continue;
    for (const [version, half] of listFolder(folder).halves) {
      if (base.has(version) || version >= newest.version || reported.has(version)) continue;
      reported.add(version);
      const file = displayPath(join(folder, half.up ?? (half.down as string)));
      findings.push({
        severity: 'error',
        code: 'ORDER_CONFLICT',
        file,
        message:
          `revision ${half.name.revision} (${half.name.stem}) is new since ${ref}, but ${ref} already has ${newest.revision} (${newest.stem}), which sorts after it: ` +
          `a database already at ${newest.revision} would apply ${half.name.revision} out of order. ` +
          `Give it a fresh version: \`new ${half.name.description}\` makes an empty pair with the current time; move this revision's SQL into those files and delete these.`,
      });
    }
  }
  return findings;
}
