"""Django settings: every value comes from the environment, read here and nowhere else.

Each variable, with its default, is listed in `.env.example`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"environment variable {name} is required")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum {minimum}")
    return value


def env_float(name: str, default: float, *, low: float, high: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={value} is outside {low}..{high}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate: N/second, N/minute, N/hour or N/day."""
    value = os.environ.get(name, default).strip()
    count, _, period = value.partition("/")
    if not count.isdigit() or period not in {"second", "minute", "hour", "day", "s", "m", "h", "d"}:
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 100/minute")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# The product's own files: the embedded database, caches (the evaluation sets), logs. The image
# sets /data/var, a volume its user may write (the code under /app is not theirs).
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "insecure-development-key-do-not-use" if DEBUG else None)
if not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("insecure")):
    raise ImproperlyConfigured("SECRET_KEY must be a random string of 50 or more characters")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from here, not from a CDN
    "django_celery_beat",
    "screening",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # /healthz and /metrics answer whatever the Host (web:8000 for Prometheus and health checks
    # inside docker compose, a pod's address...): before CommonMiddleware checks ALLOWED_HOSTS.
    "screening.ops.probes.ProbesMiddleware",
    # A chunked body (no Content-Length) would reach the views empty: 411 before anything reads it.
    "screening.ingest.limits.LengthRequiredMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "screening.urls"
WSGI_APPLICATION = "screening.wsgi.application"

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
                "screening.review.audit.alarms_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_SERVER_SIDE_BINDING", True
):
    # Parameters sent apart from the query text, and a statement run 5 times on a connection
    # prepared (psycopg's prepare_threshold): a page's queries are planned once a connection,
    # not per request. Off (0) behind a pooler that cannot keep prepared statements (PgBouncer
    # in transaction mode before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded default: web server and worker share one file, so wait on locks and use WAL.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's model backend, reading a user's roles and permissions in one query a request
AUTHENTICATION_BACKENDS = ["screening.ops.backends.RolesBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# Stamps, display images, model inputs and uploaded bundles: the local filesystem (MEDIA_ROOT,
# the embedded default) or an S3-compatible object store (SeaweedFS, AWS S3, ...), so that web and
# workers on different machines share them without a shared disk.
MEDIA_STORAGE = env_choice("MEDIA_STORAGE", "filesystem", ("filesystem", "s3"))
S3_BUCKET = env_str("S3_BUCKET", "screening")
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL", "")  # empty: AWS itself
S3_REGION = env_str("S3_REGION", "us-east-1")
S3_ACCESS_KEY_ID = env_str("S3_ACCESS_KEY_ID", "")  # empty: boto3's own chain (IAM role, ...)
S3_SECRET_ACCESS_KEY = env_str("S3_SECRET_ACCESS_KEY", "")
S3_PREFIX = env_str("S3_PREFIX", "")  # a folder inside the bucket
_S3_OPTIONS = {
    "bucket_name": S3_BUCKET,
    "endpoint_url": S3_ENDPOINT_URL or None,
    "region_name": S3_REGION,
    "access_key": S3_ACCESS_KEY_ID or None,
    "secret_key": S3_SECRET_ACCESS_KEY or None,
    "location": S3_PREFIX,
    "default_acl": None,  # private: pages and the API serve the files, never the bucket
    "querystring_auth": True,
    "file_overwrite": False,  # as on the filesystem: a name taken gets a fresh one
    "addressing_style": "path",  # SeaweedFS and other self-hosted stores
    "signature_version": "s3v4",
}
STORAGES = {
    "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _S3_OPTIONS}
    if MEDIA_STORAGE == "s3"
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Ingest limits: a stamp file's size on disk, a stamp's side in pixels, a bundle's total size.
STAMP_MAX_BYTES = env_int("STAMP_MAX_BYTES", 4 * 1024 * 1024, minimum=1024)
STAMP_MAX_SIDE = env_int("STAMP_MAX_SIDE", 1024, minimum=100)
BUNDLE_MAX_BYTES = env_int("BUNDLE_MAX_BYTES", 8 * 1024**3, minimum=1024)
# Form fields other than files (a tracklet's metadata is a few kB; the JSON limit is 1 MiB).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
# Uploads over the ingest limits are refused while they arrive (413 naming the limit).
FILE_UPLOAD_HANDLERS = [
    "screening.ingest.limits.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "screening.api.pagination.PagePagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "screening.api.schema.ScreeningAutoSchema",
    "EXCEPTION_HANDLER": "screening.api.errors.exception_handler",
    # `?format=` outside the view's formats is a 400 naming them, not a 404.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "screening.api.filters.FormatNegotiation",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("API_THROTTLE_ANON", "60/minute"),
        "user": env_rate("API_THROTTLE_USER", "6000/minute"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tracklet screening API",
    "DESCRIPTION": "Send tracklets and night bundles, give verdicts and stamp labels, and take "
    "the labels out (JSON pages or streamed CSV). Token authentication: "
    "`Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "TrackletStatusEnum": "screening.models.Tracklet.Status",
        "JobStatusEnum": "screening.models.JobStatus",
        "VerdictValueEnum": "screening.models.Verdict.Value",
        "MpcReportStatusEnum": "screening.models.MpcReport.Status",
        "AuditStatusEnum": "screening.review.audit.AUDIT_STATUSES",
    },
}

# Celery: Redis when REDIS_URL is set; otherwise an embedded broker on the filesystem (demo only).
REDIS_URL = env_str("REDIS_URL", "")
CELERY_DATA_DIR = Path(env_str("CELERY_DATA_DIR", str(VAR_DIR / "celery")))
if REDIS_URL:
    # Shared by every web process: API throttling counts requests across them.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest task, so a late-acked task is not redelivered while it runs.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600, minimum=60),
    }
else:
    for _folder in ("queue", "control", "results"):
        (CELERY_DATA_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_RESULT_BACKEND = f"file://{CELERY_DATA_DIR / 'results'}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DATA_DIR / "queue"),
        "data_folder_out": str(CELERY_DATA_DIR / "queue"),
        "control_folder": str(CELERY_DATA_DIR / "control"),
        "store_processed": False,
    }

# Every worker writes a heartbeat this often (seconds); the metrics call a worker down after
# three missed beats. METRICS_TOKEN: if set, /metrics asks for `Authorization: Bearer TOKEN`.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 15, minimum=1)
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

BUNDLE_UPLOAD_KEEP_DAYS = env_int("BUNDLE_UPLOAD_KEEP_DAYS", 7, minimum=1)
# An uploaded bundle is split into chunks of this many tracklets, ingested by every worker on
# the default queue at once (one job, one progress bar, one report).
INGEST_CHUNK_TRACKLETS = env_int("INGEST_CHUNK_TRACKLETS", 500, minimum=1)
# A chunk (or an upload's job) silent this long is taken over by the sweep: its worker was lost
# (a chunk of 500 tracklets takes seconds, and writes its progress every second).
INGEST_CHUNK_STALE_SECONDS = env_int("INGEST_CHUNK_STALE_SECONDS", 600, minimum=1)
# How often the beat sweeps uploads: chunks whose messages the broker lost, silent chunks,
# uploads whose chunks have all finished.
INGEST_SWEEP_SECONDS = env_int("INGEST_SWEEP_SECONDS", 60, minimum=5)
# How long one tracklet's ingest retries a database that went away (a restart, a failover)
# before its chunk stops and is left to the sweep; no tracklet is rejected for it.
INGEST_DB_RETRY_SECONDS = env_int("INGEST_DB_RETRY_SECONDS", 60, minimum=0)

# Inference: device ("auto" = a GPU when there is one); stamps a worker claims at once; stamps
# per forward pass of the ICN (0 = the device's default: 4096 on a GPU, 128 on the CPU);
# precision ("auto" = bfloat16 autocast on a GPU and on a CPU with bf16 in hardware, float32 on
# other CPUs; "int8" = the ICN quantized, CPU only, on request); torch.compile on or off;
# CPU threads per worker process (0 = every core the process may use); how long a worker's
# claim on tracklets lasts before the sweep hands them to another worker.
INFERENCE_DEVICE = env_str("INFERENCE_DEVICE", "auto")
INFERENCE_BATCH_STAMPS = env_int("INFERENCE_BATCH_STAMPS", 2048, minimum=1)
INFERENCE_PASS_STAMPS = env_int("INFERENCE_PASS_STAMPS", 0)
INFERENCE_PRECISION = env_choice("INFERENCE_PRECISION", "auto", ("auto", "fp32", "bf16", "int8"))
INFERENCE_COMPILE = env_bool("INFERENCE_COMPILE", False)
INFERENCE_THREADS = env_int("INFERENCE_THREADS", 0)
INFERENCE_CLAIM_SECONDS = env_int("INFERENCE_CLAIM_SECONDS", 300, minimum=1)
INFERENCE_SWEEP_SECONDS = env_int("INFERENCE_SWEEP_SECONDS", 60, minimum=5)
MODELS_DIR = Path(env_str("MODELS_DIR", str(BASE_DIR / "models")))
# Where a machine keeps checkpoints it fetched from shared storage (MEDIA_STORAGE=s3: registering
# a model copies its checkpoint to the bucket's models/ folder; workers elsewhere download it once).
CHECKPOINT_CACHE_DIR = Path(env_str("CHECKPOINT_CACHE_DIR", "") or VAR_DIR / "cache" / "models")
# digest2 at scoring (screening/scoring/digest2.py): where its model and observatory codes are
# kept, and the no-ID NEO score from which a tracklet is an NEO candidate (the MPC's NEOCP: 65).
DIGEST2_CACHE_DIR = Path(env_str("DIGEST2_CACHE_DIR", "") or VAR_DIR / "cache" / "digest2")
DIGEST2_NEO_CANDIDATE = env_float("DIGEST2_NEO_CANDIDATE", 65.0, low=0.0, high=100.0)

# Retraining (training queue): device; a running job that sends no heartbeat for this long is
# marked failed (its worker was lost); TRAINING_PRESET: how big a run is
# (screening.registry.training.PRESETS): "full" (the default, the documented run), "demo" (a
# run of minutes on 2 cores, which `./run demo` sets), "quick" (seconds, for tests; not a useful
# model; TRAINING_QUICK=1 is the same).
TRAINING_DEVICE = env_str("TRAINING_DEVICE", "auto")
TRAINING_STALE_SECONDS = env_int("TRAINING_STALE_SECONDS", 2 * 3600, minimum=5)
TRAINING_QUICK = env_bool("TRAINING_QUICK", False)
TRAINING_PRESET = env_choice("TRAINING_PRESET", "full", ("full", "demo", "quick"))
# Weight each agreed tracklet verdict in retraining by its reviewers' mean accuracy on gold
# (1.0 for a reviewer with no gold judged); the weights go into the run's log.
TRAINING_WEIGHT_REVIEWERS = env_bool("TRAINING_WEIGHT_REVIEWERS", False)

# Audited auto-rejection: the share of auto-rejected tracklets put into reviewers' queues blind
# (at least AUDIT_MIN_PER_NIGHT a night and model), the lost-real rate whose upper bound raises
# the alarm, the interval's confidence, and the nights of the rolling window. The draw is keyed
# by AUDIT_SECRET (default: derived from SECRET_KEY), so it can be re-derived but not foreseen.
AUDIT_RATE = env_float("AUDIT_RATE", 0.02, low=0.0, high=1.0)
AUDIT_MIN_PER_NIGHT = env_int("AUDIT_MIN_PER_NIGHT", 50)
AUDIT_TARGET_LOSS = env_float("AUDIT_TARGET_LOSS", 0.02, low=0.0, high=1.0)
AUDIT_CONFIDENCE = env_float("AUDIT_CONFIDENCE", 0.95, low=0.5, high=0.9999)
AUDIT_WINDOW_NIGHTS = env_int("AUDIT_WINDOW_NIGHTS", 14, minimum=1)
AUDIT_SECRET = env_str("AUDIT_SECRET", "") or f"audit:{SECRET_KEY}"
# Reviewer quality: the share of ordinary to-review tracklets shown to two reviewers.
SECOND_SCREENING_RATE = env_float("SECOND_SCREENING_RATE", 0.05, low=0.0, high=1.0)
# Blind screening: a reviewer's rows to review show no score, class, status or others' verdicts,
# in any view, filter, API answer or export, until their verdict (so that
# audit, gold and second-screening rows look like any other); on whenever any of them is on.
SCREENING_BLIND = env_bool(
    "SCREENING_BLIND", AUDIT_RATE > 0 or AUDIT_MIN_PER_NIGHT > 0 or SECOND_SCREENING_RATE > 0
)
# Seconds the page's verdict and undo saves wait before they are stored: a test's way to type
# faster than the server answers. 0 in any real use.
SCREENING_SAVE_DELAY_SECONDS = env_float("SCREENING_SAVE_DELAY_SECONDS", 0.0, low=0.0, high=10.0)

# MPC reports (ADES): the observatory code (ATLAS: T05, T08, M22, W68), the submitter block,
# the auto-accept threshold (off until an admin sets MPC_AUTO_ACCEPT=1) with the audited
# precision a night must reach for it, and how a report is sent ("dry-run": recorded only).
MPC_STATION = env_choice("MPC_STATION", "t08", ("t05", "t08", "m22", "w68")).upper()
MPC_SUBMITTER = env_str("MPC_SUBMITTER", "J. Doe")
MPC_OBSERVERS = env_list("MPC_OBSERVERS", "J. Doe")
MPC_MEASURERS = env_list("MPC_MEASURERS", "J. Doe")
MPC_TELESCOPE_DESIGN = env_str("MPC_TELESCOPE_DESIGN", "Schmidt")
MPC_TELESCOPE_APERTURE = env_str("MPC_TELESCOPE_APERTURE", "0.5")  # metres
MPC_TELESCOPE_DETECTOR = env_str("MPC_TELESCOPE_DETECTOR", "CCD")
MPC_ASTROMETRY_CATALOG = env_str("MPC_ASTROMETRY_CATALOG", "Gaia2")
MPC_PHOTOMETRY_BAND = env_str("MPC_PHOTOMETRY_BAND", "o")
# The catalogue the magnitudes were calibrated against (ADES photCat), its own setting.
MPC_PHOTOMETRY_CATALOG = env_str("MPC_PHOTOMETRY_CATALOG", "Gaia2")
# This installation's trkSub prefix: trkSubs are the prefix and the tracklet's id in base 36, 8
# characters; two installations reporting to the MPC need different prefixes. 1 to 3 letters and
# digits, first a letter no designation starts with (not A, C, D, I, J, K, P, X).
MPC_TRKSUB_PREFIX = env_str("MPC_TRKSUB_PREFIX", "S")
if not re.fullmatch(r"[BEFGHLMNOQRSTUVWYZ][A-Z0-9]{0,2}", MPC_TRKSUB_PREFIX):
    raise ImproperlyConfigured(
        f"MPC_TRKSUB_PREFIX must be 1 to 3 capital letters and digits starting with a letter "
        f"other than A, C, D, I, J, K, P or X (those start MPC designations), got "
        f"{MPC_TRKSUB_PREFIX!r}"
    )
MPC_AUTO_ACCEPT = env_bool("MPC_AUTO_ACCEPT", False)
MPC_AUTO_ACCEPT_THRESHOLD = env_float("MPC_AUTO_ACCEPT_THRESHOLD", 0.99, low=0.0, high=1.0)
MPC_AUTO_ACCEPT_MIN_PRECISION = env_float("MPC_AUTO_ACCEPT_MIN_PRECISION", 0.99, low=0, high=1)
MPC_SENDER = env_str("MPC_SENDER", "screening.reports.ades.DryRunSender")

# Beat keeps its schedule in the database (editable in the admin); the entries below are
# installed there on start, the weekly retraining by the post-migrate hook.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "prune-bundle-uploads": {"task": "screening.tasks.prune_bundle_uploads", "schedule": 6 * 3600},
    "sweep-unscored": {
        "task": "screening.tasks.sweep_unscored",
        "schedule": INFERENCE_SWEEP_SECONDS,
    },
    "reap-training-runs": {"task": "screening.tasks.reap_training_runs", "schedule": 300},
    "sweep-bundle-chunks": {
        "task": "screening.tasks.sweep_bundle_chunks",
        "schedule": INGEST_SWEEP_SECONDS,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Production hardening: on whenever DEBUG is off; each can be relaxed behind a TLS proxy.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading commits the whole domain (and its subdomains) to HTTPS in browsers for months; that is
# the site owner's decision, not a default, so the check that asks for it is silenced while off.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # health checks, scrapes: plain HTTP
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
