/**
 * `npm test`'s reporter: a dot per passing test (a letter per skipped or failed one) while the
 * suite runs, then each failure with its error, each skip with its reason, and last node's own
 * counts (`ℹ pass N`, `ℹ skipped N`, …) as the spec reporter prints them, so CI can read them.
 * Plain JavaScript: node loads a reporter before any `--import` hook could compile TypeScript.
 */
import { relative } from 'node:path';
import { inspect } from 'node:util';

const where = (data) => (data.file ? `${relative(process.cwd(), data.file)}${data.line ? `:${data.line}` : ''}` : '');

/** A suite's own entry repeats its tests' outcome: only the leaves are counted here. */
const isSuite = (data) => data.details?.type === 'suite';

export default async function* reporter(source) {
  const failures = [];
  const skips = [];
  const summary = [];
  const printed = [];
  let column = 0;
  const mark = (c) => {
    column++;
    return column % 100 === 0 ? `${c}\n` : c;
  };
  for await (const event of source) {
    const { type, data } = event;
    if (type === 'test:pass' && !isSuite(data)) {
      if (data.skip !== undefined) {
        skips.push(`﹣ ${data.name}${typeof data.skip === 'string' ? ` # ${data.skip}` : ''}  (${where(data)})`);
        yield mark('s');
      } else if (data.todo !== undefined) yield mark('t');
      else yield mark('.');
    } else if (type === 'test:pass' && isSuite(data) && data.skip !== undefined) {
      // A skipped suite runs none of its tests: it is the one line that says why.
      skips.push(`﹣ ${data.name}${typeof data.skip === 'string' ? ` # ${data.skip}` : ''}  (${where(data)})`);
      yield mark('S');
    } else if (type === 'test:fail') {
      const error = data.details?.error;
      // A suite fails when one of its tests did; that test is reported, not the suite again.
      if (isSuite(data) && error?.failureType === 'subtestsFailed') continue;
      const cause = error?.cause ?? error;
      failures.push(`✖ ${data.name}  (${where(data)})\n${indent(inspect(cause, { depth: 4 }))}`);
      // Named at once too, so that a long run shows what failed while it goes on; details at the end.
      column = 0;
      yield `F\n✖ ${data.name}  (${where(data)})\n`;
    } else if (type === 'test:diagnostic' && data.nesting === 0) {
      summary.push(`ℹ ${data.message}`);
    } else if (type === 'test:stderr' || type === 'test:stdout') {
      // What a test file printed outside any test (a crash before its first test, say).
      if (data.message?.trim()) printed.push(`${where(data)}: ${data.message.trimEnd()}`);
    }
  }
  const out = ['\n'];
  if (printed.length > 0) out.push(`\nprinted outside any test:\n${indent(printed.join('\n').slice(0, 4000))}\n`);
  if (failures.length > 0) out.push(`\nfailing tests (${failures.length}):\n`, `${failures.join('\n\n')}\n`);
  if (skips.length > 0) out.push(`\nskipped (${skips.length}), with their reasons:\n`, `${skips.join('\n')}\n`);
  out.push('\n', `${summary.join('\n')}\n`);
  yield out.join('');
}

function indent(text) {
  return String(text)
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}
