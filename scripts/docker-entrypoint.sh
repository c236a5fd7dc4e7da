#!/bin/sh
# Container entrypoint: wait for the database, migrate to head, then become the container's
# command. A failed migration stops the start (exit non-zero; the command never runs), so a
# replica never serves against a schema it does not expect. Every replica may run this at
# once: the runner's lock lets one migrate while the others wait and then find nothing to do.
#
#   ENTRYPOINT ["scripts/docker-entrypoint.sh"]
#   CMD ["node", "bot.js"]
#
# Settings: DATABASE_URL, MIGRATIONS_DIR (default: the sql/ beside this script),
# MIGRATIONS_TABLE, MIGRATE_WAIT (seconds to wait for the database, default 60),
# MIGRATE_LOCK_TIMEOUT (seconds; default: wait for the lock as long as it takes).
set -eu

app_dir=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
export MIGRATIONS_DIR="${MIGRATIONS_DIR:-$app_dir/sql}"

lock_flag=""
[ -n "${MIGRATE_LOCK_TIMEOUT:-}" ] && lock_flag="--lock-timeout=${MIGRATE_LOCK_TIMEOUT}"

# The compiled CLI starts faster (no TypeScript transform at every container start); use it
# when `npm run build` has produced it, and tsx otherwise.
if [ -f "$app_dir/dist/migrate.cjs" ]; then
  node "$app_dir/dist/migrate.cjs" head --wait="${MIGRATE_WAIT:-60}" $lock_flag
else
  "$app_dir/node_modules/.bin/tsx" "$app_dir/scripts/migrate.ts" head --wait="${MIGRATE_WAIT:-60}" $lock_flag
fi

[ "$#" -eq 0 ] && exit 0
exec "$@"
