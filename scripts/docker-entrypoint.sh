#!/bin/sh
# Container entrypoint: wait for the database, migrate to head, then become the container's
# command. A failed migration stops the start (exit non-zero; the command never runs), so a
# replica never serves against a schema it does not expect. Every replica may run this at
# once: the runner's lock lets one migrate while the others wait and then find nothing to do.
#
#   ENTRYPOINT ["scripts/docker-entrypoint.sh"]
#   CMD ["node", "bot.js"]
#
# Settings: DATABASE_URL (required unless MIGRATE_DATABASE_URL is set), MIGRATE_DATABASE_URL
# (the URL to migrate through when DATABASE_URL is the app's pooled endpoint: a direct one to the
# server; the app keeps DATABASE_URL), MIGRATIONS_DIR (default: the sql/ beside this script),
# MIGRATIONS_TABLE, MIGRATE_WAIT (seconds to wait for the database, default 60),
# MIGRATE_LOCK_TIMEOUT (seconds; default: wait for the lock as long as it takes),
# MIGRATE_PHASE (read by the CLI itself: `pre` for rolling deploys applies the pending pre
# revisions and leaves `-- migrate:phase post` ones pending; once the rollout is done, run
# `head --phase=post` once. docs/docker.md, "Rolling deploys").
set -eu

# Inside a container the CLI's default, sqlite:bot.db, would migrate a throwaway file.
if [ -z "${DATABASE_URL:-}" ] && [ -z "${MIGRATE_DATABASE_URL:-}" ]; then
  echo "docker-entrypoint: DATABASE_URL is not set; set it to the database to migrate, or MIGRATE_DATABASE_URL to migrate through another endpoint (nothing was run)." >&2
  exit 2
fi

app_dir=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
export MIGRATIONS_DIR="${MIGRATIONS_DIR:-$app_dir/sql}"

lock_flag=""
[ -n "${MIGRATE_LOCK_TIMEOUT:-}" ] && lock_flag="--lock-timeout=${MIGRATE_LOCK_TIMEOUT}"

# The compiled CLI starts faster (no TypeScript transform at every container start); use it
# when `npm run build` has produced it. Otherwise node itself loads tsx (`--import`), rather
# than the tsx wrapper: a signal sent to the wrapper would not reach the node that migrates.
migrate() {
  if [ -f "$app_dir/dist/migrate.cjs" ]; then
    node "$app_dir/dist/migrate.cjs" head --wait="${MIGRATE_WAIT:-60}" $lock_flag &
  else
    node --import "$app_dir/node_modules/tsx/dist/esm/index.mjs" "$app_dir/scripts/migrate.ts" \
      head --wait="${MIGRATE_WAIT:-60}" $lock_flag &
  fi
  child=$!
}

# `docker stop` signals this shell (PID 1), which would not pass it on by itself: forward it,
# so that the migration stops with the container instead of running on unseen. (A background
# job ignores SIGINT in a script, so Ctrl-C is passed on as SIGTERM.)
child=""
trap 'kill -TERM "$child" 2>/dev/null || :' TERM INT
migrate
status=0
wait "$child" || status=$?
while kill -0 "$child" 2>/dev/null; do # wait returned for the signal: now wait for the exit
  status=0
  wait "$child" || status=$?
done
trap - TERM INT
[ "$status" -eq 0 ] || exit "$status"

[ "$#" -eq 0 ] && exit 0
exec "$@"
