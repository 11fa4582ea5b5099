"""The data model: nights, tracklets, detections, classes, models, predictions, labels, jobs."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Abs, Coalesce

from classifier.classes import class_name_problem


class Night(models.Model):
    """One observing night; tracklets are unique by their survey id within a night."""

    date = models.DateField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Kept as tracklets arrive and change status (screening.nights.night_counts_*), so that the
    # nights' list does not count every tracklet of every night on each view. No check on them:
    # a count put wrong by a hand edit of the database must never make a verdict fail
    # (`manage.py night_counts` counts again).
    n_tracklets = models.IntegerField(default=0)
    n_pending = models.IntegerField(default=0, help_text="Tracklets not yet scored.")
    n_reviewed = models.IntegerField(default=0, help_text="Tracklets with a verdict.")

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return self.date.isoformat()


class StampClass(models.Model):
    """A class a stamp can belong to: the paper's 8, plus any an admin adds (say GLARE).

    Its name follows `classifier.classes.class_name_problem` (ASCII letters, digits and `_ . -`,
    starting with a letter or digit: no formula for a spreadsheet, no bidirectional-text
    control for a page), checked in the admin's form and on every save."""

    name = models.CharField(max_length=32, unique=True)
    is_real = models.BooleanField(help_text="True for a real source (AST, STREAK, COMET).")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "stamp classes"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        problem = class_name_problem(self.name)
        if problem:
            raise ValidationError({"name": problem})


class ModelVersionManager(models.Manager):
    def active(self) -> ModelVersion | None:
        """The active model version (at most one: a constraint says so), or None before any."""
        return self.filter(is_active=True).first()

    def active_pk(self) -> int | None:
        """The active model version's primary key, without loading the row."""
        return self.filter(is_active=True).values_list("pk", flat=True).first()


class ModelVersion(models.Model):
    """A trained ICN + TCN pair; `version` is its checkpoint's content hash."""

    version = models.CharField(max_length=64, unique=True)
    checkpoint = models.CharField(max_length=500, help_text="Path of the checkpoint file.")
    classes = models.JSONField(default=list)
    threshold = models.FloatField(default=0.8)
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    tracklets_scored = models.PositiveBigIntegerField(
        default=0, help_text="Tracklet scores stored by this version, ever (a counter)."
    )
    stamps_scored = models.PositiveBigIntegerField(
        default=0, help_text="Stamp predictions stored by this version, ever (a counter)."
    )

    objects = ModelVersionManager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_model"
            )
        ]

    def __str__(self) -> str:
        return self.version[:12]


# Sort keys of the queue that put unscored tracklets last in both directions (scores are 0..1).
# Indexed as expressions; NULLS LAST would do the same but SQLite cannot index it.
QUEUE_ORDER_DESC = Coalesce(F("score"), Value(-1.0))
QUEUE_ORDER_ASC = Coalesce(F("score"), Value(2.0))
# The to-review queue sorts blind rows (audits of auto-rejection, gold) by their queue_score,
# a score drawn from the night's passing tracklets, so that the order does not give them away.
REVIEW_ORDER_DESC = Coalesce(F("queue_score"), F("score"), Value(-1.0))
REVIEW_ORDER_ASC = Coalesce(F("queue_score"), F("score"), Value(2.0))
# NEO candidates first: digest2's NEO score, highest first, unscored last.
DIGEST2_ORDER = Coalesce(F("digest2_neo"), Value(-1.0))
# Informative first: the score (or blind row's place) nearest the threshold, unscored last.
MARGIN_ORDER = Coalesce(
    Abs(Coalesce(F("queue_score"), F("score")) - F("model_version__threshold")), Value(2.0)
)


UNLIKE_TRAINING_MAX = 500  # a novelty reason's length (classifier.novelty)
NOT_MOVING_MAX = 200  # the motion rule's reason (classifier.motion)


def stamp_classes_text(classes) -> str:
    """`Tracklet.stamp_classes` of these top classes: each once, sorted, between spaces, so
    that a class is found as " NAME " and never as part of another's name."""
    names = sorted({str(c) for c in classes if c})
    return f" {' '.join(names)} " if names else ""


def stamp_classes_match(name: str) -> str:
    """What `Tracklet.stamp_classes` contains when a stamp's top class was `name`."""
    return f" {name} "


class Tracklet(models.Model):
    """A candidate moving object: its detections, and once scored, its real/bogus score."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SCORED = "scored", "scored"
        REVIEWED = "reviewed", "reviewed"

    night = models.ForeignKey(Night, on_delete=models.PROTECT, related_name="tracklets")
    survey_id = models.CharField(max_length=64, help_text="The survey's id, unique per night.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    score = models.FloatField(null=True, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    content_sha256 = models.CharField(
        max_length=64, help_text="Hash of metadata and stamps, to tell a re-send from a conflict."
    )
    n_detections = models.PositiveSmallIntegerField()
    rate_deg_per_day = models.FloatField(help_text="Rate of motion from first to last detection.")
    position_angle_deg = models.FloatField(help_text="Direction of motion, east of north.")
    mean_mag = models.FloatField(
        null=True, blank=True, help_text="Of the measured magnitudes; null: none measured."
    )
    pixels = models.FileField(
        upload_to="pixels/",
        help_text="The tracklet's file: its model input, the stamps in time order as one "
        "(n, 100, 100) float32 array, and each stamp as received (screening.tracklet_files).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When an inference worker took it; expires after a lease."
    )
    audit_key = models.FloatField(
        null=True,
        blank=True,
        help_text="Keyed hash of night, model and survey id in [0, 1): the audit draw's order.",
    )
    queue_score = models.FloatField(
        null=True,
        blank=True,
        help_text="Where a blind row (audit, gold) sits in the to-review queue, in score units.",
    )
    reviews_wanted = models.PositiveSmallIntegerField(
        default=1, help_text="Reviewers who should judge it: 2 when double-screened."
    )
    n_reviews = models.PositiveSmallIntegerField(
        default=0, help_text="Reviewers whose current verdict is real or bogus."
    )
    report = models.ForeignKey(
        "MpcReport", null=True, blank=True, on_delete=models.SET_NULL, related_name="tracklets"
    )
    # digest2, the MPC's short-arc orbit classifier (screening/scoring/digest2.py), at scoring
    digest2_neo = models.FloatField(
        null=True, blank=True, help_text="digest2's NEO score (no-ID), 0-100; null: not scored."
    )
    digest2_scores = models.JSONField(
        default=dict, blank=True, help_text='{"noid": {class: score}, "raw": {class: score}}'
    )
    digest2_version = models.CharField(
        max_length=64, blank=True, help_text="digest2 package and population model used."
    )
    digest2_problem = models.CharField(
        max_length=300, blank=True, help_text="Why digest2 could not score the tracklet."
    )
    unlike_training = models.CharField(
        max_length=UNLIKE_TRAINING_MAX,
        blank=True,
        help_text=(
            "Why its model's training data holds nothing like it (classifier.novelty): such a "
            "tracklet stays in the to-review queue whatever its score. Blank: like training."
        ),
    )
    not_moving = models.CharField(
        max_length=NOT_MOVING_MAX,
        blank=True,
        default="",
        db_default="",
        help_text=(
            "Why its model capped its score below the threshold as a source that does not move "
            "(classifier.motion: its motion within its astrometric errors), with the networks' "
            "own score. Blank: the rule did not apply."
        ),
    )
    stamp_classes = models.TextField(
        blank=True,
        default="",
        help_text=(
            "The top classes its model gave its stamps, each once, between spaces (' AST NOISE "
            "'); blank: not scored. The queue's class filter reads it (stamp_classes_text)."
        ),
    )

    class Meta:
        ordering = ["night", "survey_id"]
        constraints = [
            models.UniqueConstraint(fields=["night", "survey_id"], name="tracklet_unique_per_night")
        ]
        indexes = [
            # The queue's orders: a night's tracklets by score, either way, unscored last.
            models.Index(F("night"), QUEUE_ORDER_DESC.desc(), F("id"), name="tracklet_queue_desc"),
            models.Index(F("night"), QUEUE_ORDER_ASC.asc(), F("id"), name="tracklet_queue_asc"),
            models.Index(
                F("night"), REVIEW_ORDER_DESC.desc(), F("id"), name="tracklet_review_desc"
            ),
            models.Index(F("night"), REVIEW_ORDER_ASC.asc(), F("id"), name="tracklet_review_asc"),
            models.Index(fields=["status", "created_at"], name="tracklet_status_created"),
            # the metrics' latency from ingest to score over the last minutes
            models.Index(fields=["scored_at"], name="tracklet_scored_at"),
            models.Index(fields=["night", "digest2_neo"], name="tracklet_digest2_neo"),
            # the few tracklets unlike training: the summary, the metrics and the queue filter
            models.Index(
                fields=["night"], condition=~Q(unlike_training=""), name="tracklet_unlike_training"
            ),
            # the few the motion rule rejected: the summary and the metrics
            models.Index(fields=["night"], condition=~Q(not_moving=""), name="tracklet_not_moving"),
        ]

    def __str__(self) -> str:
        return f"{self.night}/{self.survey_id}"

    def model_input(self):
        """The stamps as the model takes them: (n, 100, 100) float32 in time order."""
        from screening.tracklet_files import read_pixels

        return read_pixels(self.pixels)


class Detection(models.Model):
    """One detection of a tracklet, with its stamp as received and what ingest derived from it."""

    tracklet = models.ForeignKey(Tracklet, on_delete=models.CASCADE, related_name="detections")
    index = models.PositiveSmallIntegerField(help_text="0-based position in time order.")
    mjd = models.FloatField()
    ra = models.FloatField(help_text="Right ascension, degrees.")
    dec = models.FloatField(help_text="Declination, degrees.")
    mag = models.FloatField(
        null=True, blank=True, help_text="Magnitude; null: none measured (see mag_flag)."
    )
    mag_flag = models.CharField(
        max_length=32,
        blank=True,
        help_text='Why there is no magnitude: "missing", or the sentinel sent ("sentinel 99").',
    )
    x = models.FloatField(help_text="Detector x, pixels.")
    y = models.FloatField(help_text="Detector y, pixels.")
    station = models.CharField(
        max_length=3, blank=True, default="", help_text="MPC code; empty: MPC_STATION."
    )
    band = models.CharField(
        max_length=3, blank=True, default="", help_text="ADES band; empty: MPC_PHOTOMETRY_BAND."
    )
    exposure = models.FloatField(null=True, blank=True, help_text="Exposure time, seconds.")
    time_ref = models.CharField(
        max_length=5,
        default="mid",
        choices=[("mid", "mid-exposure"), ("start", "start of exposure")],
        help_text="What mjd marks.",
    )
    rms_ra = models.FloatField(null=True, blank=True, help_text="RA*cos(Dec) 1-sigma, arcsec.")
    rms_dec = models.FloatField(null=True, blank=True, help_text="Dec 1-sigma, arcsec.")
    rms_mag = models.FloatField(null=True, blank=True, help_text="Magnitude 1-sigma.")
    fwhm_px = models.FloatField(
        null=True,
        blank=True,
        help_text="The exposure's seeing: PSF FWHM in the stamp's pixels; null: not sent.",
    )
    stamp = models.FileField(
        upload_to="stamps/",
        help_text="The file that holds the stamp as received: its tracklet's file "
        "(screening.tracklet_files).",
    )
    stamp_format = models.CharField(max_length=8)
    stamp_sha256 = models.CharField(max_length=64)
    stamp_width = models.PositiveIntegerField()
    stamp_height = models.PositiveIntegerField()
    display = models.FileField(
        upload_to="display/", blank=True, help_text="Display PNG, made on first view and kept."
    )
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The same observation (station, time and place, or the same stamp), stored "
        "first in another tracklet: it is reported once, under that one.",
    )

    class Meta:
        ordering = ["tracklet", "index"]
        constraints = [
            models.UniqueConstraint(fields=["tracklet", "index"], name="detection_unique_index")
        ]
        indexes = [
            # ingest finds a detection already stored by its time, or by its stamp
            models.Index(fields=["mjd"], name="detection_mjd"),
            # the same observation in another tracklet: a declination band, then the time
            models.Index(fields=["dec", "mjd"], name="detection_dec_mjd"),
            models.Index(fields=["stamp_sha256"], name="detection_stamp_sha256"),
        ]

    def __str__(self) -> str:
        return f"{self.tracklet}#{self.index}"

    def stamp_as_received(self) -> bytes:
        """The stamp file, byte for byte as the survey sent it."""
        from screening.tracklet_files import read_stamp_bytes

        return read_stamp_bytes(self.stamp, self.index)


class StampPrediction(models.Model):
    """The ICN's class probabilities for one stamp, by one model version."""

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    probabilities = models.JSONField(help_text="Class name to probability.")
    top_class = models.CharField(max_length=32)
    top_probability = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["detection", "model_version"], name="prediction_unique_per_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.detection_id}: {self.top_class} {self.top_probability:.2f}"


class TrackletScore(models.Model):
    """The TCN's real/bogus score for one tracklet, by one model version (history kept)."""

    tracklet = models.ForeignKey(Tracklet, on_delete=models.CASCADE, related_name="scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    score = models.FloatField()
    unlike_training = models.CharField(
        max_length=UNLIKE_TRAINING_MAX,
        blank=True,
        help_text="Why this model's training data holds nothing like it; blank: like training.",
    )
    not_moving = models.CharField(
        max_length=NOT_MOVING_MAX,
        blank=True,
        default="",
        db_default="",
        help_text="Why this model capped its score as a source that does not move; blank: not.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tracklet", "model_version"], name="score_unique_per_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tracklet_id}: {self.score:.3f}"


class Verdict(models.Model):
    """A reviewer's real/bogus verdict on a tracklet. Append-only: each reviewer's latest row is
    their current verdict; an undo appends a `withdrawn` row."""

    class Value(models.TextChoices):
        REAL = "real", "real"
        BOGUS = "bogus", "bogus"
        WITHDRAWN = "withdrawn", "withdrawn (undo)"

    tracklet = models.ForeignKey(Tracklet, on_delete=models.CASCADE, related_name="verdicts")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="verdicts"
    )
    value = models.CharField(max_length=16, choices=Value.choices)
    score_shown = models.FloatField(
        null=True, blank=True, help_text="The score on the reviewer's screen; null when blind."
    )
    model_version_shown = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The model whose score the row carried (shown, or hidden when blind).",
    )
    blind = models.BooleanField(
        default=False, help_text="The row was blind: no score, class or others' verdicts shown."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tracklet", "-created_at"], name="verdict_latest")]

    def __str__(self) -> str:
        return f"{self.tracklet_id}: {self.value}"


class CurrentVerdict(models.Model):
    """Each reviewer's latest verdict on a tracklet, kept beside the history for fast queries.

    Written only by `verdict_record`, in the transaction that appends the Verdict row; the
    history in Verdict is never changed.
    """

    tracklet = models.ForeignKey(Tracklet, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    verdict = models.OneToOneField(Verdict, on_delete=models.CASCADE, related_name="+")
    value = models.CharField(max_length=16, choices=Verdict.Value.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reviewer", "tracklet"], name="current_verdict_unique")
        ]
        indexes = [models.Index(fields=["tracklet"], name="current_verdict_tracklet")]

    def __str__(self) -> str:
        return f"{self.tracklet_id}: {self.value}"


class ReviewClaim(models.Model):
    """A reviewer is screening this tracklet: it sits on the page of their to-review queue.

    Made when a to-review page is shown and renewed while it stays open (the page polls); other
    reviewers' pages leave a claimed tracklet out (unless it wants more reviewers than hold it),
    so that reviewers screening one night at once do not judge the same tracklets. A claim
    lapses at `expires_at` (a closed tab) or is released when the page is left.
    """

    tracklet = models.ForeignKey(Tracklet, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tracklet", "reviewer"], name="review_claim_unique")
        ]
        indexes = [models.Index(fields=["tracklet", "expires_at"], name="review_claim_live")]

    def __str__(self) -> str:
        return f"{self.tracklet_id} claimed by {self.reviewer_id} until {self.expires_at}"


class StampLabel(models.Model):
    """A reviewer's class for one stamp. Append-only: the latest one wins."""

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="labels")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stamp_labels"
    )
    stamp_class = models.ForeignKey(StampClass, on_delete=models.PROTECT, related_name="labels")
    class_shown = models.CharField(
        max_length=32, blank=True, help_text="Model's top class shown; empty when blind."
    )
    probability_shown = models.FloatField(null=True, blank=True)
    model_version_shown = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    blind = models.BooleanField(
        default=False, help_text="The stamp was shown blind: the model's class was not on screen."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["detection", "-created_at"], name="stamp_label_latest")]

    def __str__(self) -> str:
        return f"{self.detection_id}: {self.stamp_class_id}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class TrainingRun(models.Model):
    """A retraining job: its status, progress, log and the candidate model it registered.

    `is_live` is True while the run is queued or running and NULL after: a unique constraint on
    it lets the database itself refuse a second live run.
    """

    class Trigger(models.TextChoices):
        MANUAL = "manual", "started by an admin"
        SCHEDULED = "scheduled", "on the schedule"

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    is_live = models.BooleanField(null=True, default=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    step = models.CharField(max_length=200, blank=True)
    log = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    candidate = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_live"], name="one_live_training_run"),
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"


class ModelActivation(models.Model):
    """Each time a model became the active one: by whom, replacing which, and on what grounds."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    forced = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_version} active from {self.created_at:%Y-%m-%d %H:%M}"


class BundleUpload(models.Model):
    """A night bundle uploaded over the API, ingested by a worker with per-tracklet results."""

    file = models.FileField(upload_to="bundles/")
    original_name = models.CharField(max_length=255)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    summary = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=list, blank=True, help_text="One entry per tracklet.")
    error = models.TextField(blank=True)
    n_tracklets = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tracklets in the bundle, once its manifest is read."
    )
    n_chunks = models.PositiveIntegerField(
        null=True, blank=True, help_text="Chunks it was split into (BundleChunk)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.status})"


class BundleChunk(models.Model):
    """A part of an uploaded bundle (INGEST_CHUNK_TRACKLETS tracklets), ingested by any worker.

    The upload's job splits the bundle into chunks, each a stored archive of its tracklets'
    manifest rows and stamps, so that workers on other machines ingest them at once; the last
    chunk to finish writes the upload's one report.
    """

    upload = models.ForeignKey(BundleUpload, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField(help_text="0-based; the report lists chunks in order.")
    file = models.FileField(upload_to="bundles/chunks/", blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    tracklets = models.PositiveIntegerField(help_text="Tracklets in the chunk.")
    done = models.PositiveIntegerField(default=0, help_text="Tracklets ingested so far.")
    results = models.JSONField(default=list, blank=True, help_text="One entry per tracklet.")
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=255, blank=True, help_text="The worker that ran it.")
    started_at = models.DateTimeField(null=True, blank=True)
    alive_at = models.DateTimeField(
        null=True, blank=True, help_text="Its worker's last sign of life (claim, progress)."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["upload", "index"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "index"], name="bundle_chunk_unique")
        ]

    def __str__(self) -> str:
        return f"{self.upload_id}#{self.index} ({self.status})"


class QueueAssignment(models.Model):
    """A tracklet put into reviewers' queues blind, and the first verdict given on it.

    audit: auto-rejected by `model_version`, drawn by the keyed hash (the verdict estimates the
    real tracklets lost); gold: its truth is known (`truth`), to measure reviewers; second: an
    ordinary tracklet shown to two reviewers, for their agreement.
    """

    class Kind(models.TextChoices):
        AUDIT = "audit", "audit of auto-rejection"
        GOLD = "gold", "gold (known truth)"
        SECOND = "second", "second screening"

    tracklet = models.ForeignKey(Tracklet, on_delete=models.CASCADE, related_name="assignments")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    truth = models.CharField(max_length=8, blank=True, help_text="real or bogus, for gold.")
    source = models.CharField(max_length=64, blank=True, help_text="Where the truth comes from.")
    verdict = models.ForeignKey(
        Verdict, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    value = models.CharField(max_length=16, blank=True, help_text="The first verdict given.")
    created_at = models.DateTimeField(auto_now_add=True)
    judged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tracklet", "kind", "model_version"], name="assignment_unique"
            ),
            models.UniqueConstraint(
                fields=["tracklet", "kind"],
                condition=Q(model_version__isnull=True),
                name="assignment_unique_unversioned",
            ),
        ]
        indexes = [models.Index(fields=["kind", "model_version"], name="assignment_kind_model")]

    def __str__(self) -> str:
        return f"{self.kind} {self.tracklet_id}: {self.value or 'not judged'}"


class MpcReport(models.Model):
    """A night's report of real tracklets to the Minor Planet Center, in ADES (PSV and XML)."""

    class Status(models.TextChoices):
        VALID = "valid", "valid, not sent"
        DRY_RUN = "dry-run", "sent (dry run)"
        SENT = "sent", "sent"

    night = models.ForeignKey(Night, on_delete=models.PROTECT, related_name="reports")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALID)
    psv = models.TextField()
    xml = models.TextField()
    content_sha256 = models.CharField(max_length=64, unique=True)
    n_tracklets = models.PositiveIntegerField()
    n_observations = models.PositiveIntegerField()
    auto_accepted = models.PositiveIntegerField(
        default=0, help_text="Tracklets in it by the auto-accept threshold, not a verdict."
    )
    first_detection_mjd = models.FloatField(help_text="Earliest detection in the report.")
    latency_seconds = models.FloatField(help_text="From the first detection to the valid report.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_log = models.TextField(blank=True)
    again = models.ManyToManyField(
        Tracklet,
        blank=True,
        related_name="reported_again",
        help_text="Tracklets an admin re-reported on purpose (reported before, in another).",
    )
    again_reason = models.TextField(blank=True, help_text="Why the admin re-reported them.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"MPC report {self.pk} for {self.night} ({self.n_observations} observations)"


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life, written by the worker every HEARTBEAT_SECONDS."""

    name = models.CharField(max_length=255, unique=True, help_text="Celery node name.")
    role = models.CharField(
        max_length=32,
        blank=True,
        help_text="The worker's role in screening.ops.workers: cpu, training or gpu.",
    )
    queues = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="Device, precision, CPU.")
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} seen {self.seen_at:%H:%M:%S}"
