#!/usr/bin/env bash
# The kill test of the job queue (issue "Background work for every domain"): three `nest serve`
# replicas on one PostgreSQL database, the Hetzner simulator in its own process, 200
# organizations created, and a chaos loop that SIGKILLs a random replica at random moments and
# restarts it. At the end every organization must be `active`, no job lost or stuck `running`,
# and the simulator must have created exactly 200 servers (no duplicates).
#
#   scripts/kill-test.sh [ORGS] [CHAOS_SECONDS]      (defaults: 200, 90)
#
# Needs a built `nest` (NEST_BIN, default $CARGO_TARGET_DIR/debug/nest), psql, curl, and the
# PostgreSQL server of the README at 127.0.0.1:5432 (user postgres, trust auth). It creates and
# drops its own database and uses only loopback addresses. Exit status 0 means the test passed.
set -euo pipefail
cd "$(dirname "$0")/.."

ORGS="${1:-200}"
CHAOS_SECONDS="${2:-90}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
NEST="${NEST_BIN:-$TARGET/debug/nest}"
PG="postgres://postgres@127.0.0.1:5432"
DB="nest_kill_$$"
WORK="$(mktemp -d)"
SIM_PORT=3299
PORTS=(3301 3302 3303)
PASSWORD="kill test password 42"
export NEST_SECRETS_KEY=6b696c6c2d746573742d6b65792d6f6e6c792d666f722d74686973212121212e
export DATABASE_URL="$PG/$DB"
declare -A PIDS=()

log() { echo "kill-test: $*"; }

cleanup() {
  for pid in "${PIDS[@]}" ${SIM_PID:-} ${CREATOR_PID:-}; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$NEST" ] || { echo "kill-test: no nest binary at $NEST (cargo build -p server)"; exit 2; }
psql "$PG/postgres" -qc "CREATE DATABASE $DB" >/dev/null

# The simulated cloud outlives every replica.
# Servers take a few seconds to build, so that many jobs are in flight whenever a replica dies.
NEST_SIM_ADDR="127.0.0.1:$SIM_PORT" NEST_SIM_BOOT_DELAY_MS=2000 NEST_SIM_ACTION_DELAY_MS=1000 \
  NEST_SIM_FIRST_IP=127.60.0.2 NEST_LOG=warn "$NEST" simulate-hetzner >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
export HETZNER_API_URL="http://127.0.0.1:$SIM_PORT/v1" HETZNER_API_TOKEN=kill-test
"$NEST" migrate up >/dev/null
echo "$PASSWORD" | "$NEST" create-admin --email chaos@nest.test >/dev/null

start_replica() {
  local i=$1
  NEST_ADDR="127.0.0.1:${PORTS[$i]}" NEST_DATA_DIR="$WORK/data-$i" NEST_LOG=warn \
    NEST_JOB_INTERVAL_SECS=1 NEST_JOB_LEASE_SECS=6 NEST_SMOKE_TIMEOUT_SECS=60 \
    "$NEST" serve >>"$WORK/replica-$i.log" 2>&1 &
  PIDS[$i]=$!
}
wait_healthy() {
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:${PORTS[$1]}/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "replica $1 did not come up"; tail -20 "$WORK/replica-$1.log"; return 1
}
for i in 0 1 2; do start_replica "$i"; done
for i in 0 1 2; do wait_healthy "$i"; done

# Sign in on replica 0 (sessions are shared through the database) and create the organizations,
# spread over the three replicas.
BASE="http://127.0.0.1:${PORTS[0]}"
COOKIE=$(curl -fs -D - -o /dev/null -H 'content-type: application/x-www-form-urlencoded' \
  --data-urlencode "email=chaos@nest.test" --data-urlencode "password=$PASSWORD" \
  "$BASE/api/login" | awk -F'[ ;]' 'tolower($1)=="set-cookie:" {print $2}' | tail -1)
[ -n "$COOKIE" ] || { log "could not sign in"; exit 1; }
TIER=$(psql "$DATABASE_URL" -Atc "SELECT id FROM tiers WHERE code = 'starter'")
# Organizations are created (in the background, while the chaos runs) through any replica
# that answers: a request to a replica being killed is retried on the next one.
create_all() {
  for n in $(seq 1 "$ORGS"); do
    for try in $(seq 0 30); do
      port=${PORTS[$(( (n + try) % 3 ))]}
      if curl -fs -o /dev/null -H "cookie: $COOKIE" -H 'content-type: application/x-www-form-urlencoded' \
        --data-urlencode "name=Chaos $n" --data-urlencode "slug=chaos-$n" \
        --data-urlencode "owner_email=owner@chaos-$n.test" --data-urlencode "tier_id=$TIER" \
        --data-urlencode "region=nbg1" "http://127.0.0.1:$port/api/create_organization"; then
        break
      fi
      # The request may have committed before its replica died: then the slug is taken.
      [ "$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM organizations WHERE slug = 'chaos-$n'")" = 1 ] && break
      sleep 0.3
    done
  done
  echo "kill-test: all $ORGS organizations created"
}
log "creating $ORGS organizations while replicas are killed"
create_all &
CREATOR_PID=$!

# Chaos: SIGKILL a random replica at a random moment, restart it a moment later.
kills=0
end=$(( $(date +%s) + CHAOS_SECONDS ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep "$(( RANDOM % 4 + 1 )).$(( RANDOM % 10 ))"
  i=$(( RANDOM % 3 ))
  kill -9 "${PIDS[$i]}" 2>/dev/null || true
  wait "${PIDS[$i]}" 2>/dev/null || true
  kills=$(( kills + 1 ))
  sleep "$(( RANDOM % 3 )).$(( RANDOM % 10 ))"
  start_replica "$i"
done
wait "$CREATOR_PID"
log "chaos over after $kills kills; waiting for the queue to drain"

active=0
for _ in $(seq 1 300); do
  active=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM organizations WHERE status = 'active'")
  unfinished=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
  [ "$active" = "$ORGS" ] && [ "$unfinished" = 0 ] && break
  sleep 2
done
running=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM jobs WHERE state = 'running'")
queued=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM jobs WHERE state = 'queued' AND organization_id IS NOT NULL")
failed=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM jobs WHERE state = 'failed'")
create_jobs=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM jobs WHERE kind = 'create'")
takeovers=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM jobs WHERE kind = 'create' AND attempts > 1")
created=$(curl -fs "http://127.0.0.1:$SIM_PORT/_sim/stats" | sed -n 's/.*"servers_created":\([0-9]*\).*/\1/p')
servers=$(curl -fs "http://127.0.0.1:$SIM_PORT/_sim/stats" | sed -n 's/.*"servers":\([0-9]*\).*/\1/p')
log "organizations active: $active/$ORGS; create jobs: $create_jobs ($takeovers needed more than one attempt); jobs running: $running, queued: $queued, failed: $failed; servers created: $created (live: ${servers:-?}); replica kills: $kills"
if [ "$active" = "$ORGS" ] && [ "$running" = 0 ] && [ "$queued" = 0 ] && [ "$failed" = 0 ] && [ "$created" = "$ORGS" ]; then
  log "PASS"
else
  log "FAIL"; for i in 0 1 2; do tail -5 "$WORK/replica-$i.log"; done; exit 1
fi
