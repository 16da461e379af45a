#!/usr/bin/env bash
# Entrypoint of the control plane image: one image, one role per container.
#
#   web                      the dashboard, the REST API and /healthz /readyz /metrics (gunicorn)
#   worker QUEUE[,QUEUE...]  a Celery worker consuming these queues (operations, monitoring, notifications)
#   beat                     the Celery beat scheduler (run exactly one)
#   migrate                  apply the database migrations (the chart's migration Job)
#   wait-for-migrations      wait until the database has every migration of this image (init containers)
#   manage ARGS...           any manage.py command, e.g. `manage create_api_token admin`
#
# Every role but `manage` execs its process, so it is the container's main process and gets the
# kubelet's SIGTERM itself: gunicorn finishes its requests, a Celery worker its current tasks (warm
# shutdown), within the pod's terminationGracePeriodSeconds. Settings come from the environment
# (controlplane/settings.py); docs/deploy.md lists what the chart sets.
set -euo pipefail

log() { printf 'kcp-entrypoint: %s\n' "$*" >&2; }
usage() {
  log "usage: entrypoint.sh web | worker QUEUE[,QUEUE...] | beat | migrate | wait-for-migrations | manage ARGS..."
  exit 64
}

APP_DIR=${APP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PYTHON=${PYTHON:-python}
manage() { "$PYTHON" "$APP_DIR/manage.py" "$@"; }

# The kubelet's probes and Prometheus reach a pod by its IP, which no configured host name matches:
# Django would answer them 400 (DisallowedHost). The pod's own IP is therefore an allowed host too.
if [[ -n ${POD_IP:-} ]]; then
  export ALLOWED_HOSTS="${ALLOWED_HOSTS:+$ALLOWED_HOSTS,}$POD_IP"
fi

role=${1:-}
[[ -n $role ]] || usage
shift

case $role in
  web)
    cd "$APP_DIR"
    # --worker-tmp-dir: gunicorn's heartbeat files go to memory, not to a root file system that may be
    # read-only. Requests that take longer than --timeout are a bug: the API answers 202 for long work.
    exec "$PYTHON" -m gunicorn controlplane.wsgi:application \
      --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_WORKERS:-2}" \
      --threads "${WEB_THREADS:-4}" \
      --timeout "${WEB_TIMEOUT_SECONDS:-60}" \
      --graceful-timeout "${WEB_GRACEFUL_TIMEOUT_SECONDS:-25}" \
      --worker-tmp-dir "${WEB_WORKER_TMP_DIR:-/dev/shm}" \
      --access-logfile - \
      --access-logformat 'method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_us=%(D)s' \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}"
    ;;
  worker)
    queues=${1:-}
    [[ $queues =~ ^[a-z_]+(,[a-z_]+)*$ ]] || {
      log "worker needs the queues it consumes, comma-separated (e.g. operations, or monitoring,notifications)"
      usage
    }
    cd "$APP_DIR"
    # The hostname names the queues and the pod, so `celery inspect` output says who is who.
    exec "$PYTHON" -m celery -A controlplane worker \
      --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${WORKER_CONCURRENCY:-2}" \
      --queues "$queues" \
      --hostname "${queues//,/-}@${POD_NAME:-%h}" \
      --without-mingle --without-gossip
    ;;
  beat)
    cd "$APP_DIR"
    # The schedule's state file goes into the writable state directory (CELERY_BEAT_SCHEDULE_FILENAME).
    exec "$PYTHON" -m celery -A controlplane beat --loglevel "${LOG_LEVEL:-INFO}"
    ;;
  migrate)
    exec "$PYTHON" "$APP_DIR/manage.py" migrate --no-input
    ;;
  wait-for-migrations)
    # `migrate --check` fails while a migration of this image is unapplied and while the database
    # cannot be reached; both mean "not yet". WAIT_FOR_MIGRATIONS_TIMEOUT_SECONDS=0 waits for ever
    # (an init container's pod then shows Init:0/1 until the migration Job has run).
    timeout=${WAIT_FOR_MIGRATIONS_TIMEOUT_SECONDS:-0}
    interval=${WAIT_FOR_MIGRATIONS_INTERVAL_SECONDS:-5}
    [[ $timeout =~ ^[0-9]+$ && $interval =~ ^[0-9]+$ ]] || {
      log "WAIT_FOR_MIGRATIONS_TIMEOUT_SECONDS and WAIT_FOR_MIGRATIONS_INTERVAL_SECONDS take whole seconds"
      exit 64
    }
    started=$SECONDS
    while true; do
      if output=$(manage migrate --check --no-input 2>&1); then
        log "the database has every migration of this image"
        exit 0
      fi
      # Unapplied migrations make `migrate --check` fail silently; an unreachable database says why.
      reason=$(printf '%s\n' "$output" | grep -v '^[[:space:]]*$' | tail -n 1 | sed 's/^[[:space:]]*//' || true)
      reason=${reason:-migrations of this image are not applied yet}
      if ((timeout > 0 && SECONDS - started >= timeout)); then
        log "gave up after ${timeout} s: the database still lacks migrations of this image or cannot be reached (${reason})"
        exit 1
      fi
      log "waiting for the migration Job: ${reason}"
      sleep "$interval"
    done
    ;;
  manage)
    exec "$PYTHON" "$APP_DIR/manage.py" "$@"
    ;;
  *)
    log "unknown role '$role'"
    usage
    ;;
esac
