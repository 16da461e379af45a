"""Settings, all from environment variables with safe defaults.

Two profiles: development (the default: SQLite, a server-less Celery transport, a generated secret key
kept under `var/`) and production (`CONTROLPLANE_ENV=production`: PostgreSQL and Redis expected,
`SECRET_KEY` required, secure cookies and HSTS so `manage.py check --deploy` is clean).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from provisioning import distribution as _distribution

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONTROLPLANE_VAR_DIR", BASE_DIR / "var"))
# Private: it holds the SQLite database, generated keys and the brokers' data.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if VAR_DIR.stat().st_uid == os.getuid():
    VAR_DIR.chmod(0o700)

ENVIRONMENT = os.environ.get("CONTROLPLANE_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _secret_key() -> str:
    if key := os.environ.get("SECRET_KEY"):
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when CONTROLPLANE_ENV=production")
    # Development: generate once and keep it, so sessions and tokens survive a restart.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()


def _secrets_encryption_keys() -> list[str]:
    """Fernet keys for secrets at rest (controlplane.encryption), newest first."""
    if keys := _env_list("SECRETS_ENCRYPTION_KEYS", []):
        return keys
    if PRODUCTION:
        raise ImproperlyConfigured("SECRETS_ENCRYPTION_KEYS must be set when CONTROLPLANE_ENV=production")
    # Development: generate one once and keep it beside the database it protects.
    key_file = VAR_DIR / "secrets_encryption_key"
    if not key_file.exists():
        from cryptography.fernet import Fernet

        key_file.write_text(Fernet.generate_key().decode("ascii"))
        key_file.chmod(0o600)
    return [key_file.read_text().strip()]


SECRETS_ENCRYPTION_KEYS = _secrets_encryption_keys()
DEBUG = _env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # swagger-ui's files, served from here: /api/docs/ needs no CDN
    "controlplane.tenancy",
    "controlplane.clusters",
    "controlplane.operations",
    "controlplane.audit",
    "controlplane.api",
    "controlplane.dashboard",
    "controlplane.dataplane",
    "controlplane.targets",
    "monitoring",
    "monitoring.alerting",
]

MIDDLEWARE = [
    "controlplane.observability.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "controlplane.dashboard.errors.ErrorPageMiddleware",
    "controlplane.api.common.ApiErrorMiddleware",
    "controlplane.tenancy.throttle.ThrottledMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite by default: WAL lets the web server read while a worker writes, IMMEDIATE transactions take
# the write lock up front, and the timeout makes a writer wait instead of failing "database is locked".
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'controlplane.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if test_database := os.environ.get("TEST_DATABASE_NAME"):
    # Lets several test runs share one PostgreSQL server without dropping each other's database.
    DATABASES["default"]["TEST"] = {"NAME": test_database}
# PostgreSQL connections come from a pool in each process (psycopg_pool, Django's `pool` option): a
# new connection costs PostgreSQL a backend process, several times the CPU of a collection's queries,
# and every Celery task and request would open one. Each Celery pool process builds its own pool
# after the fork, and tasks hand their connections back to it (controlplane.celery). Health checks
# make the pool replace a connection the server dropped (a restart) instead of handing it out.
# DATABASE_POOL=0, or a DATABASE_CONN_MAX_AGE, opens a connection per task and request instead (as
# does an environment installed before psycopg[pool] was a dependency).
if (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    and os.environ.get("DATABASE_POOL", "1") != "0"
    and not DATABASES["default"]["CONN_MAX_AGE"]
    and importlib.util.find_spec("psycopg_pool") is not None
):
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        # A Celery pool process runs one task at a time (two connections with an operation's
        # heartbeat); the web server needs one per request thread.
        "min_size": 1,
        "max_size": int(os.environ.get("DATABASE_POOL_MAX_SIZE", "10")),
        "max_idle": 300,
    }
# The collection's statements, run for every cluster every few seconds, are prepared on PostgreSQL
# (monitoring.collection_sql), and planned once per connection: the generic plan, which for these
# lookups by key is the plan a custom one would pick, without planning each time. Django prepares
# nothing else, so the plan setting touches only them. DATABASE_PREPARED_STATEMENTS=0 turns them off
# for a pooler that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
DATABASE_PREPARED_STATEMENTS = os.environ.get("DATABASE_PREPARED_STATEMENTS", "1") != "0"
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_PREPARED_STATEMENTS:
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()
    # Django turns psycopg's preparing off (None), which refuses even statements asked to be prepared;
    # its own cursors bind parameters in the client and never prepare, whatever this says.
    options.setdefault("prepare_threshold", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = ["controlplane.tenancy.throttle.ThrottledModelBackend"]
# Failed sign-ins and API token authentications allowed per account and per client address within a
# window; beyond them every attempt, right or wrong, answers 429 until the window ends.
AUTH_FAILURES_PER_ACCOUNT = int(os.environ.get("AUTH_FAILURES_PER_ACCOUNT", "10"))
AUTH_FAILURES_PER_ADDRESS = int(os.environ.get("AUTH_FAILURES_PER_ADDRESS", "50"))
AUTH_FAILURE_WINDOW_SECONDS = int(os.environ.get("AUTH_FAILURE_WINDOW_SECONDS", "300"))
# Networks of the reverse proxies in front of the web processes (an ingress controller's pods): a
# request from one of them is traced back through X-Forwarded-For to its client (controlplane.proxies),
# for the per-address limits above and the audit log.
TRUSTED_PROXIES = _env_list("TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_exc} (networks such as 10.0.0.0/8)") from None
# Prometheus scrapes /metrics with `Authorization: Bearer <this>`; unset, only staff API tokens may.
METRICS_BEARER_TOKEN = os.environ.get("METRICS_BEARER_TOKEN", "")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG  # serve straight from the app directories in development
STATICFILES_DIRS = [BASE_DIR / "controlplane" / "dashboard" / "static"]

CSRF_FAILURE_VIEW = "controlplane.dashboard.errors.csrf_failure"

LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:cluster-list"
LOGOUT_REDIRECT_URL = "dashboard:login"

# How long a create's Idempotency-Key is remembered: a retry within it gets the first answer.
IDEMPOTENCY_KEY_TTL_SECONDS = int(os.environ.get("IDEMPOTENCY_KEY_TTL_SECONDS", str(24 * 3600)))
# Bodies larger than this are refused with 413 before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_REQUEST_BODY_BYTES", str(256 * 1024)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlplane.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["controlplane.api.common.BoundedJSONParser"],
    # JSON only, errors included, whatever a browser asks for; /api/docs/ is the page for people.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "controlplane.api.common.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "controlplane.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "controlplane.api.common.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Kafka Control Plane API",
    "DESCRIPTION": (
        "Provision, operate and monitor Apache Kafka clusters. Long-running changes answer 202 with an "
        "operation resource to follow; conflicting changes answer 409 naming the running operation."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "OperationStateEnum": "controlplane.operations.choices.OperationState",
        "BrokerStateEnum": "controlplane.clusters.choices.BrokerState",
        "ClusterStatusEnum": "controlplane.clusters.choices.ClusterStatus",
        "TopicStatusEnum": "controlplane.dataplane.choices.TopicStatus",
        "DriftPolicyEnum": "controlplane.clusters.choices.DriftPolicy",
        "TargetKindEnum": "controlplane.targets.choices.TargetKind",
        "OperationKindEnum": "controlplane.operations.choices.OperationKind",
    },
}

# Celery. Redis whenever configured; otherwise kombu's file-system transport, which needs no server,
# so `make run` works on a machine with nothing but Python.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery-queue"
    for sub in ("out", "processed", "control"):
        (_queue_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "out"),
        "data_folder_out": str(_queue_dir / "out"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
# Three queues, so operations never wait behind monitoring or notification work (a collection of an
# unreachable cluster holds its worker for the admin timeout, a delivery for the channel's timeout).
# `make run` runs one worker for operations and one for the other two; production may scale each.
CELERY_TASK_DEFAULT_QUEUE = "operations"
CELERY_TASK_ROUTES = {
    "monitoring.tasks.*": {"queue": "monitoring"},
    "monitoring.alerting.tasks.*": {"queue": "notifications"},
    # A drift check, like a collection, waits on a cluster that may not answer.
    "controlplane.dataplane.tasks.*": {"queue": "monitoring"},
}
TASK_QUEUES = ("operations", "monitoring", "notifications")
# Every task has a hard time limit, so nothing can hold a worker for good; tasks that should finish
# much sooner (collections, deliveries) set tighter ones. An operation step that runs into the soft
# limit is retried later like any transient failure.
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "1500"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "1800"))
CELERY_TASK_IGNORE_RESULT = True  # the database, not a result backend, is the source of truth
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
# Celery's Django fix-up closes every connection around each task and, in prefork workers, Django's
# connection pool too (celery/celery#10554), so each task would pay for a new connection. With this
# it does so only every this many tasks; around each task controlplane.celery hands connections back
# to the pool instead, as Django does around requests.
CELERY_DB_REUSE_MAX = 10_000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "reap-stalled-operations": {
        "task": "controlplane.operations.tasks.reap_stalled_operations",
        "schedule": timedelta(seconds=float(os.environ.get("OPERATION_REAPER_INTERVAL_SECONDS", "15"))),
    },
    "collect-cluster-health": {
        "task": "monitoring.tasks.schedule_collections",
        "schedule": timedelta(seconds=float(os.environ.get("COLLECTION_TICK_SECONDS", "5"))),
    },
    "prune-monitoring-history": {
        "task": "monitoring.tasks.prune_history",
        "schedule": timedelta(minutes=10),
    },
    "alerting-housekeeping": {
        "task": "monitoring.alerting.tasks.housekeeping",
        "schedule": timedelta(seconds=30),
    },
    "reconcile-brokers": {
        "task": "controlplane.clusters.tasks.reconcile_clusters",
        "schedule": timedelta(seconds=30),
    },
    "prune-vm-runs": {
        "task": "controlplane.targets.tasks.prune_vm_runs",
        "schedule": timedelta(hours=1),
    },
    "check-topic-drift": {
        "task": "controlplane.dataplane.tasks.schedule_drift_checks",
        "schedule": timedelta(seconds=float(os.environ.get("DRIFT_CHECK_INTERVAL_SECONDS", "60"))),
    },
}

# Operations engine.
OPERATION_HEARTBEAT_SECONDS = float(os.environ.get("OPERATION_HEARTBEAT_SECONDS", "5"))
# A running operation whose heartbeat is older than this is taken to have lost its worker.
OPERATION_STALE_AFTER_SECONDS = float(os.environ.get("OPERATION_STALE_AFTER_SECONDS", "60"))
OPERATION_MAX_TRANSIENT_RETRIES = int(os.environ.get("OPERATION_MAX_TRANSIENT_RETRIES", "8"))
OPERATION_RETRY_BASE_SECONDS = float(os.environ.get("OPERATION_RETRY_BASE_SECONDS", "2"))
# Replication traffic allowed per broker while scaling or replacing moves replicas.
OPERATION_REPLICATION_THROTTLE_BYTES_PER_SECOND = int(
    os.environ.get("OPERATION_REPLICATION_THROTTLE_BYTES_PER_SECOND", str(50 * 2**20))
)
# How long a rolling restart or upgrade waits for one broker (until it is safe to restart, then until
# it is back in sync) before the operation fails.
OPERATION_BROKER_TIMEOUT_SECONDS = float(os.environ.get("OPERATION_BROKER_TIMEOUT_SECONDS", "900"))
# How often a running operation looks again at what it waits for (a reassignment copying data, a
# restarted broker catching up); the worker is free in between.
OPERATION_POLL_SECONDS = float(os.environ.get("OPERATION_POLL_SECONDS", "5"))
# A broker unreachable this long is replaced, on clusters with self-healing on.
SELF_HEALING_AFTER_SECONDS = float(os.environ.get("SELF_HEALING_AFTER_SECONDS", "300"))

# Provisioning backends.
LOCAL_BACKEND_STATE_DIR = Path(os.environ.get("LOCAL_BACKEND_STATE_DIR", VAR_DIR / "local-clusters"))
# What `local` clusters run: "kafka" (Apache Kafka; needs Java 17+), "tansu" (the single-node
# development broker) or "auto" (Apache Kafka when Java 17+ is found, else the development broker).
LOCAL_ENGINE = os.environ.get("LOCAL_ENGINE", "auto")
# Heap of each `local` broker at most; Kafka serves reads from the page cache, not the heap.
LOCAL_BROKER_MAX_HEAP_MB = int(os.environ.get("LOCAL_BROKER_MAX_HEAP_MB", "512"))
# Apache Kafka distributions: an unpacked one of your own (used for its version), the cache others are
# fetched into, the sources tried in order (tarball: the official release from the mirrors, checked
# against its SHA-512; maven: assembled from Maven Central, every jar pinned by checksum).
KAFKA_HOME = os.environ.get("KAFKA_HOME") or None
KAFKA_DISTRIBUTION_CACHE_DIR = Path(
    os.environ.get("KAFKA_DISTRIBUTION_CACHE_DIR") or _distribution.default_cache_dir()
)
KAFKA_DISTRIBUTION_SOURCES = _env_list("KAFKA_DISTRIBUTION_SOURCES", list(_distribution.SOURCES))
KAFKA_MIRROR_URLS = _env_list("KAFKA_MIRROR_URLS", list(_distribution.DEFAULT_MIRRORS))
MAVEN_EXECUTABLE = os.environ.get("MAVEN", "mvn")
KAFKA_VERSIONS = _env_list("KAFKA_VERSIONS", list(_distribution.SUPPORTED_VERSIONS))
DEFAULT_KAFKA_VERSION = os.environ.get("DEFAULT_KAFKA_VERSION", _distribution.DEFAULT_VERSION)

# Email (notifications, invitations): printed to the console unless an SMTP server is configured.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "kafka-control-plane@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
# How long an invitation to join an organization can be accepted.
INVITATION_VALID_DAYS = int(os.environ.get("INVITATION_VALID_DAYS", "7"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "format": "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # kafka-python logs every connection at INFO, and collections open one per broker.
        "kafka": {"level": "WARNING"},
    },
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    # The kubelet's probes and Prometheus reach a pod over plain HTTP inside the cluster; redirected to
    # HTTPS, every probe and scrape would fail.
    SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# Backend name -> factory (dotted path) building it from these settings. A backend absent here is
# refused at cluster creation with a clear message.
CONTROLPLANE_BACKENDS = {
    "local": "controlplane.clusters.backends.local_backend",
    "kubernetes": "controlplane.clusters.backends.kubernetes_backend",
    "vm": "controlplane.clusters.backends.vm_backend",
}
# More backends, e.g. "name=dotted.path.to.factory,other=...": how test workers get test backends.
CONTROLPLANE_BACKENDS |= dict(
    item.split("=", 1) for item in _env_list("CONTROLPLANE_EXTRA_BACKENDS", []) if "=" in item
)
# Backends this installation does not offer, e.g. "local" where the control plane runs in pods (the
# Helm chart): its brokers would run inside a worker's pod. Asking for one answers 400 saying so.
for _name in _env_list("CONTROLPLANE_DISABLED_BACKENDS", []):
    CONTROLPLANE_BACKENDS.pop(_name, None)
# Kubernetes targets: what a dry run renders for when the organization has registered none, and
# what a registered target leaves unset.
KUBERNETES_NAMESPACE = os.environ.get("KUBERNETES_NAMESPACE", "kafka")
KUBERNETES_TOPOLOGY_KEY = os.environ.get("KUBERNETES_TOPOLOGY_KEY", "topology.kubernetes.io/zone")
KUBERNETES_STORAGE_CLASS = os.environ.get("KUBERNETES_STORAGE_CLASS", "")
KUBERNETES_IMAGE = os.environ.get("KUBERNETES_IMAGE", "kafka-control-plane/kafka:{version}")
# How long one Kubernetes API request may take before the target counts as unreachable.
KUBERNETES_REQUEST_TIMEOUT_SECONDS = float(os.environ.get("KUBERNETES_REQUEST_TIMEOUT_SECONDS", "10"))
# VM host pools: where playbook runs keep their artifacts (a directory per operation, pruned once
# older than VM_RUN_RETENTION_SECONDS), where release archives pushed to hosts are packed, and how
# long one playbook run may take; it runs inside an operation step, so it must end before the task's
# soft time limit (CELERY_TASK_SOFT_TIME_LIMIT).
VM_RUNS_DIR = Path(os.environ.get("VM_RUNS_DIR", VAR_DIR / "vm-runs"))
VM_RUN_RETENTION_SECONDS = float(os.environ.get("VM_RUN_RETENTION_SECONDS", str(7 * 24 * 3600)))
VM_RELEASES_DIR = Path(os.environ.get("VM_RELEASES_DIR", VAR_DIR / "vm-releases"))
VM_PLAYBOOK_TIMEOUT_SECONDS = float(os.environ.get("VM_PLAYBOOK_TIMEOUT_SECONDS", "1200"))
# How long testing a pool's connection waits for one host's SSH server.
VM_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("VM_CONNECT_TIMEOUT_SECONDS", "10"))
# How long one Kafka admin request may take before the cluster counts as unreachable.
KAFKA_ADMIN_TIMEOUT_SECONDS = float(os.environ.get("KAFKA_ADMIN_TIMEOUT_SECONDS", "10"))
# Builds the Kafka admin client for a cluster: (ClusterSpec, bootstrap servers) -> KafkaAdmin.
KAFKA_ADMIN_FACTORY = os.environ.get("KAFKA_ADMIN_FACTORY", "controlplane.clusters.backends.confluent_admin")

# Monitoring: how much consumer-offset history Burrow-style evaluation keeps, and chart history.
MONITORING_LAG_WINDOW_SIZE = int(os.environ.get("MONITORING_LAG_WINDOW_SIZE", "10"))
MONITORING_HISTORY_SECONDS = int(os.environ.get("MONITORING_HISTORY_SECONDS", str(24 * 3600)))
# Points older than this are averaged into one-minute buckets.
MONITORING_RAW_HISTORY_SECONDS = int(os.environ.get("MONITORING_RAW_HISTORY_SECONDS", "3600"))
# A per-partition lag series per group multiplies /metrics series; off unless asked for.
MONITORING_EXPORT_PARTITION_LAG = _env_bool("MONITORING_EXPORT_PARTITION_LAG", False)

# Alerting and notification delivery.
ALERT_DELIVERY_MAX_ATTEMPTS = int(os.environ.get("ALERT_DELIVERY_MAX_ATTEMPTS", "8"))
ALERT_DELIVERY_RETRY_BASE_SECONDS = float(os.environ.get("ALERT_DELIVERY_RETRY_BASE_SECONDS", "2"))
ALERT_DELIVERY_RETRY_MAX_SECONDS = float(os.environ.get("ALERT_DELIVERY_RETRY_MAX_SECONDS", "600"))
# Unacknowledged firing incidents are notified again this often (Alertmanager's repeat_interval).
ALERT_REPEAT_INTERVAL_SECONDS = float(os.environ.get("ALERT_REPEAT_INTERVAL_SECONDS", str(4 * 3600)))
ALERT_HISTORY_RETENTION_DAYS = int(os.environ.get("ALERT_HISTORY_RETENTION_DAYS", "90"))
# Where people reach this installation; notifications link back to it when set.
CONTROLPLANE_PUBLIC_URL = os.environ.get("CONTROLPLANE_PUBLIC_URL", "")
# Notification URLs may resolve only to public addresses, except for these host names, addresses or
# networks (e.g. "alerts.corp.internal,10.20.0.0/16"): on-premise receivers the operator vouches for.
NOTIFICATION_ALLOWED_HOSTS = _env_list("NOTIFICATION_ALLOWED_HOSTS", [])
