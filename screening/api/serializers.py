"""API representations of nights, tracklets, detections and bundle uploads."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from screening.ingest.bundles import BundleReport
from screening.ingest.json_input import JSONInputError, json_load, type_name
from screening.models import (
    BundleChunk,
    BundleUpload,
    Detection,
    JobStatus,
    Night,
    StampLabel,
    Tracklet,
    Verdict,
)


class NightSerializer(serializers.ModelSerializer):
    tracklets = serializers.IntegerField(source="n_tracklets", read_only=True)

    class Meta:
        model = Night
        fields = ["date", "tracklets", "created_at"]


class DetectionSerializer(serializers.ModelSerializer):
    display_url = serializers.SerializerMethodField()

    class Meta:
        model = Detection
        fields = [
            "id",  # what POST /api/v1/detections/ID/label/ takes
            "index",
            "mjd",
            "ra",
            "dec",
            "mag",
            "mag_flag",
            "x",
            "y",
            "station",
            "band",
            "exposure",
            "time_ref",
            "rms_ra",
            "rms_dec",
            "rms_mag",
            "fwhm_px",
            "stamp_format",
            "stamp_width",
            "stamp_height",
            "stamp_sha256",
            "duplicate_of",  # the stored detection it repeats (reported under that one), or null
            "display_url",
        ]
        read_only_fields = fields

    def get_display_url(self, obj: Detection) -> str:
        """The display PNG over the API (token authentication): GET it for image/png."""
        return reverse("api-detection-display", args=[obj.pk])


class TrackletSerializer(serializers.ModelSerializer):
    night = serializers.DateField(source="night.date")
    tracklet = serializers.CharField(source="survey_id")
    model_version = serializers.CharField(source="model_version.version", default=None)

    class Meta:
        model = Tracklet
        fields = [
            "id",
            "night",
            "tracklet",
            "status",
            "score",
            "model_version",
            "n_detections",
            "rate_deg_per_day",
            "position_angle_deg",
            "mean_mag",
            "created_at",
            "scored_at",
            "digest2_neo",
            "neo_candidate",
            "digest2",
            "digest2_version",
            "digest2_problem",
            "unlike_training",
            "not_moving",
        ]

    digest2 = serializers.JSONField(
        source="digest2_scores",
        read_only=True,
        help_text="digest2's scores by orbit class (0-100): `noid` (of objects not yet known, "
        "the MPC's D2) and `raw`; {} when it could not score the tracklet (digest2_problem).",
    )
    neo_candidate = serializers.SerializerMethodField(
        help_text="digest2_neo >= DIGEST2_NEO_CANDIDATE (65: the MPC's NEOCP); null: no score."
    )

    def get_neo_candidate(self, obj: Tracklet) -> bool | None:
        from screening.scoring.digest2 import neo_candidate

        return None if obj.digest2_neo is None else neo_candidate(obj.digest2_neo)

    def to_representation(self, instance: Tracklet) -> dict:
        """A row blind for the caller (`screening.review.blind`) shows no score, model or status."""
        data = super().to_representation(instance)
        data["blind"] = bool(getattr(instance, "is_blind", False))
        if data["blind"]:
            data.update(score=None, model_version=None, status="to review", scored_at=None)
        return data


class TrackletDetailSerializer(TrackletSerializer):
    detections = DetectionSerializer(many=True, read_only=True)

    class Meta(TrackletSerializer.Meta):
        fields = [*TrackletSerializer.Meta.fields, "detections"]


class TrackletUploadSerializer(serializers.Serializer):
    """Multipart form: `metadata` is the tracklet as JSON; each stamp is a file field by name."""

    metadata = serializers.CharField(
        trim_whitespace=False,
        help_text='{"night": "YYYY-MM-DD", "tracklet": "id", "detections": [{"index": 0, '
        '"mjd": ..., "ra": ..., "dec": ..., "mag": ..., "x": ..., "y": ..., "stamp": "<file '
        'field name>"}, ...]}',
    )

    def validate_metadata(self, value: str) -> dict:
        try:
            parsed = json_load(value, where="metadata")
        except JSONInputError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if not isinstance(parsed, dict):
            raise serializers.ValidationError(
                f"metadata must be a JSON object, got {type_name(parsed)}"
            )
        unknown = sorted(set(parsed) - {"night", "tracklet", "detections"})
        if unknown:
            raise serializers.ValidationError(
                f"metadata has unknown field(s) {', '.join(repr(k[:40]) for k in unknown[:5])}; "
                "its fields are night, tracklet and detections"
            )
        if "detections" not in parsed:
            raise serializers.ValidationError("metadata.detections is missing")
        if not isinstance(parsed["detections"], list):
            raise serializers.ValidationError(
                f"metadata.detections must be a list, got {type_name(parsed['detections'])}"
            )
        return parsed


class BundleChunkSerializer(serializers.ModelSerializer):
    class Meta:
        model = BundleChunk
        fields = ["index", "status", "tracklets", "done", "worker", "started_at", "finished_at"]
        read_only_fields = fields


class BundleUploadSerializer(serializers.ModelSerializer):
    tracklets = serializers.IntegerField(
        source="n_tracklets", allow_null=True, help_text="Tracklets in the bundle, once read."
    )
    summary = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()
    chunks = BundleChunkSerializer(many=True, help_text="The parts workers ingest at once.")

    class Meta:
        model = BundleUpload
        fields = [
            "id",
            "original_name",
            "status",
            "progress",
            "tracklets",
            "summary",
            "results",
            "error",
            "chunks",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def _results(self, upload: BundleUpload) -> list[dict]:
        if upload.status in (JobStatus.QUEUED, JobStatus.RUNNING) and upload.n_chunks:
            # while workers ingest it: the results so far, chunk by chunk (gathered once for
            # the summary and the results)
            if getattr(upload, "_results_so_far", None) is None:
                upload._results_so_far = [r for c in upload.chunks.all() for r in c.results]
            return upload._results_so_far
        return upload.results

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "integer"}},
    )
    def get_summary(self, upload: BundleUpload) -> dict[str, int]:
        if upload.status in (JobStatus.QUEUED, JobStatus.RUNNING) and upload.n_chunks:
            return BundleReport(results=self._results(upload)).summary
        return upload.summary

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_results(self, upload: BundleUpload) -> list[dict]:
        """One entry per tracklet, in the bundle's order."""
        return self._results(upload)


class BundleUploadListSerializer(BundleUploadSerializer):
    """An upload in the list: status, progress and counts, without the per-tracklet results (a
    night's upload lists tens of thousands; read one upload for them)."""

    summary = serializers.JSONField(
        read_only=True, help_text="Counts by status once finished ({} while running)."
    )

    class Meta(BundleUploadSerializer.Meta):
        fields = [f for f in BundleUploadSerializer.Meta.fields if f != "results"]
        read_only_fields = fields


class BundleUploadCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .zip or .tar.gz night bundle.")

    def validate_file(self, value):
        """Refuse at once a file that is no archive (its first bytes say so)."""
        from screening.ingest.bundles import archive_kind

        value.seek(0)
        head = value.read(512)
        value.seek(0)
        if archive_kind(head) is None:
            raise serializers.ValidationError(
                f"{value.name[:80]!r} is not a .zip or .tar(.gz, .bz2, .xz) archive "
                "(its first bytes are not a zip, gzip, bzip2, xz or tar header)"
            )
        return value


class VerdictInputSerializer(serializers.Serializer):
    value = serializers.ChoiceField(choices=["real", "bogus", "withdrawn"])
    blind = serializers.BooleanField(
        required=False,
        default=None,
        allow_null=True,
        help_text="The row was blind on your screen (no score shown). Without it, a row in your "
        "to-review queue counts as blind.",
    )


class VerdictSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")
    tracklet_status = serializers.CharField(source="tracklet.status")
    model_version_shown = serializers.CharField(source="model_version_shown.version", default=None)

    class Meta:
        model = Verdict
        fields = [
            "id",
            "tracklet",
            "reviewer",
            "value",
            "score_shown",
            "model_version_shown",
            "blind",
            "created_at",
            "tracklet_status",
        ]


class StampLabelInputSerializer(serializers.Serializer):
    stamp_class = serializers.CharField(max_length=32)
    blind = serializers.BooleanField(
        required=False,
        default=None,
        allow_null=True,
        help_text="The stamp was shown blind (no model class). Without it, a stamp of a row in "
        "your to-review queue counts as blind.",
    )


class StampLabelSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")
    stamp_class = serializers.CharField(source="stamp_class.name")

    class Meta:
        model = StampLabel
        fields = [
            "id",
            "detection",
            "reviewer",
            "stamp_class",
            "class_shown",
            "probability_shown",
            "blind",
            "created_at",
        ]
