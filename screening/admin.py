"""The Django admin: every model, with lists and filters that help an admin find things."""

from __future__ import annotations

from django.contrib import admin

from screening import models


class RecordAdmin(admin.ModelAdmin):
    """A record that is only appended to (verdicts, stamp labels, activations): readable here,
    never added, changed or deleted. History is corrected by a new row, from the queue or the
    Models page."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Night)
class NightAdmin(admin.ModelAdmin):
    list_display = ["date", "created_at"]
    date_hierarchy = "date"


@admin.register(models.StampClass)
class StampClassAdmin(admin.ModelAdmin):
    list_display = ["name", "is_real", "description", "created_at"]
    list_filter = ["is_real"]
    search_fields = ["name"]


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "is_active", "threshold", "created_at", "activated_at"]
    list_filter = ["is_active"]
    search_fields = ["version"]


class DetectionInline(admin.TabularInline):
    model = models.Detection
    extra = 0
    fields = ["index", "mjd", "ra", "dec", "mag", "x", "y", "stamp_format", "stamp"]
    readonly_fields = fields
    can_delete = False


@admin.register(models.Tracklet)
class TrackletAdmin(admin.ModelAdmin):
    list_display = [
        "survey_id",
        "night",
        "status",
        "score",
        "model_version",
        "n_detections",
        "rate_deg_per_day",
        "mean_mag",
        "created_at",
    ]
    list_filter = ["status", "night", "model_version"]
    search_fields = ["survey_id"]
    list_select_related = ["night", "model_version"]
    readonly_fields = ["content_sha256", "created_at", "scored_at"]
    inlines = [DetectionInline]


@admin.register(models.Detection)
class DetectionAdmin(admin.ModelAdmin):
    list_display = ["tracklet", "index", "mjd", "ra", "dec", "mag", "stamp_format"]
    list_filter = ["stamp_format"]
    search_fields = ["tracklet__survey_id"]
    list_select_related = ["tracklet__night"]
    raw_id_fields = ["tracklet"]


@admin.register(models.StampPrediction)
class StampPredictionAdmin(admin.ModelAdmin):
    list_display = ["detection", "model_version", "top_class", "top_probability", "created_at"]
    list_filter = ["top_class", "model_version"]
    raw_id_fields = ["detection"]


@admin.register(models.TrackletScore)
class TrackletScoreAdmin(admin.ModelAdmin):
    list_display = ["tracklet", "model_version", "score", "created_at"]
    list_filter = ["model_version"]
    raw_id_fields = ["tracklet"]


@admin.register(models.Verdict)
class VerdictAdmin(RecordAdmin):
    list_display = [
        "tracklet",
        "value",
        "reviewer",
        "score_shown",
        "model_version_shown",
        "created_at",
    ]
    list_filter = ["value", "reviewer", "created_at"]
    search_fields = ["tracklet__survey_id"]
    raw_id_fields = ["tracklet"]


@admin.register(models.StampLabel)
class StampLabelAdmin(RecordAdmin):
    list_display = ["detection", "stamp_class", "class_shown", "reviewer", "created_at"]
    list_filter = ["stamp_class", "reviewer", "created_at"]
    raw_id_fields = ["detection"]


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "progress",
        "step",
        "candidate",
        "started_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "trigger"]
    readonly_fields = ["is_live", "heartbeat_at"]


@admin.register(models.ModelActivation)
class ModelActivationAdmin(RecordAdmin):
    """The activation history is a record: read it here, make activations on the Models page."""

    list_display = ["created_at", "model_version", "previous", "by", "forced", "reason"]
    list_filter = ["forced"]


@admin.register(models.BundleUpload)
class BundleUploadAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "original_name",
        "status",
        "progress",
        "uploaded_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    readonly_fields = ["summary", "results", "error"]
