const t0 = performance.now(); const laps = [];
const lap = (l) => laps.push(`${l} ${(performance.now() - t0).toFixed(1)}`);
const m = await import('../dist/runner/migrator.js'); lap('imp-migrator');
const p = await import('../dist/runner/drivers/postgres.js'); lap('imp-driver');
for (const k of ['ping', 'withLock', 'recordTableState', 'tableExists', 'readRecord', 'ensureRecordTable', 'close']) {
  const orig = p.PostgresDriver.prototype[k];
  p.PostgresDriver.prototype[k] = async function (...a) { lap(`>${k}`); try { return await orig.apply(this, a); } finally { lap(`<${k}`); } };
}
const f = await import('../dist/runner/files.js');
const r = await m.migrate({ url: process.argv[2], dir: 'sql' }, 'head'); lap('done');
console.log(laps.join('\n'));
