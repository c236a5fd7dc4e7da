/**
 * The layout rule of runner/ (docs/architecture.md), read from the source: which folder may
 * import which, import cycles, and file sizes. Imports of every form count, types and lazy
 * `import()` included: a boundary that only holds at run time is not a boundary a reader sees.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** The folders under runner/, lowest first; each may import only itself and those before it. */
export const LAYERS = ['core', 'scratch', 'catalog', 'check'] as const;
export const MAX_LINES = 400;

export interface Problem {
  file: string;
  message: string;
}

/** Every .ts file under `dir`, as paths relative to `root`. */
function sources(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sources(root, path));
    else if (entry.endsWith('.ts')) out.push(relative(root, path).split(sep).join('/'));
  }
  return out.sort();
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** The relative imports of one file, resolved to paths relative to `root`. */
export function importsOf(root: string, file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const found = new Set<string>();
  for (const match of text.matchAll(IMPORT)) {
    const target = relative(root, resolve(dirname(join(root, file)), match[1] as string));
    found.add(target.split(sep).join('/'));
  }
  return [...found];
}

function layerOf(file: string): number | undefined {
  const top = file.split('/')[0] as (typeof LAYERS)[number];
  const index = LAYERS.indexOf(top);
  return index < 0 ? undefined : index;
}

/** Everything wrong with the layout of the runner folder at `root`. */
export function layoutProblems(root: string): Problem[] {
  const problems: Problem[] = [];
  const files = sources(root);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const parts = file.split('/');
    if (parts.length === 1 && file !== 'index.ts') {
      problems.push({
        file,
        message: `only index.ts may sit at the top of runner/ (${LAYERS.join(', ')} are the folders)`,
      });
    }
    if (parts.length > 1 && layerOf(file) === undefined) {
      problems.push({ file, message: `folder ${parts[0]}/ is not one of ${LAYERS.join(', ')}` });
    }
    const lines = readFileSync(join(root, file), 'utf8').split('\n').length;
    if (lines > MAX_LINES) problems.push({ file, message: `${lines} lines (at most ${MAX_LINES})` });
    const imports = importsOf(root, file);
    graph.set(file, imports);
    const from = layerOf(file);
    if (from === undefined) continue;
    for (const target of imports) {
      if (target.startsWith('..')) {
        problems.push({ file, message: `imports ${target}, outside runner/` });
        continue;
      }
      const to = layerOf(target);
      if (to === undefined || to > from) {
        problems.push({
          file,
          message: `imports ${target}: ${LAYERS[from]}/ may import only ${LAYERS.slice(0, from + 1).join(', ')}`,
        });
      }
    }
  }
  for (const cycle of cycles(graph)) {
    problems.push({ file: cycle[0] as string, message: `import cycle: ${cycle.join(' → ')}` });
  }
  return problems;
}

/** Each import cycle once, as the files around it (the first repeated at the end). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') {
        const cycle = [...stack.slice(stack.indexOf(next)), next];
        const key = [...cycle.slice(0, -1)].sort().join('|');
        if (!seen.has(key)) {
          seen.add(key);
          found.push(cycle);
        }
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}
