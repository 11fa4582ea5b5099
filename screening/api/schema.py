"""What the OpenAPI schema says besides the views' own answers: the error bodies and the status
codes every operation can answer with (401, 403, 404, 400, 413, 415, 429), added by
`ScreeningAutoSchema` where a view does not name them itself.

Error bodies are JSON everywhere (the CSV and PNG renderers answer errors in JSON too):
`{"detail": "..."}`, or for invalid input `{"<field or parameter>": ["reason", ...]}`, or for a
rejected tracklet the ingest body `{"night", "tracklet", "errors": [{"field", "file", "reason"}]}`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers


class DetailErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why the request was refused.")


class IngestProblemSerializer(serializers.Serializer):
    field = serializers.CharField(required=False, help_text='The metadata field, e.g. "night".')
    file = serializers.CharField(required=False, help_text="The stamp file concerned.")
    reason = serializers.CharField()


class IngestErrorSerializer(serializers.Serializer):
    night = serializers.CharField(allow_null=True)
    tracklet = serializers.CharField(allow_null=True, help_text="The survey's tracklet id.")
    errors = IngestProblemSerializer(many=True)


# `{"field": ["reason", ...]}`: a serializer's or a filter's (or a paging parameter's) errors.
FIELD_ERRORS: dict[str, Any] = {
    "type": "object",
    "description": "Invalid input: each field or query parameter named, with its reasons.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}

DETAIL = OpenApiResponse(DetailErrorSerializer, description="Refused, with the reason.")


def detail(description: str) -> OpenApiResponse:
    return OpenApiResponse(DetailErrorSerializer, description=description)


def bad_request(*extra: Any, description: str = "Invalid input.") -> OpenApiResponse:
    """400: field errors, a `detail` (a body that cannot be parsed), or the given bodies."""
    return OpenApiResponse(
        {"oneOf": [FIELD_ERRORS, DetailErrorSerializer, *extra]}, description=description
    )


JSON = ("application/json",)


class ScreeningAutoSchema(AutoSchema):
    """drf-spectacular's schema, plus the error answers each operation can give."""

    def map_parsers(self):
        """The request body's media types: JSON alone where the view reads JSON (DRF reads forms
        there too, which the contract leaves out), so that a client generated from the schema
        sends one kind of body; multipart where the view reads files."""
        types = super().map_parsers()
        return ["application/json"] if "application/json" in types else types

    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter["in"] == "query" and parameter["name"] == "format":
                parameter["allowEmptyValue"] = True  # `?format=`: the default (JSON)
        return parameters

    def _get_filter_parameters(self):
        # django-filter reads an empty value as "no filter" (`?night=`): say so
        parameters = super()._get_filter_parameters()
        filterset = getattr(self.view, "filterset_class", None)
        filters = filterset.base_filters if filterset else {}
        for parameter in parameters:
            limit = getattr(filters.get(parameter["name"]), "get_max_validator", None)
            if limit and limit():  # django-filter's NumberFilter refuses more than 1e50
                parameter["schema"]["maximum"] = float(limit().limit_value)
            schema = parameter["schema"]
            if schema.get("type") == "string" and not {"format", "enum"} & set(schema):
                schema["pattern"] = "^[^\\x00]*$"  # form fields refuse NUL characters
            parameter["allowEmptyValue"] = True
            note = "Empty: no filter."
            parameter["description"] = f"{parameter.get('description', '')} {note}".strip()
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, JSON, direction)
        for response in responses.values():
            content = response.get("content", {})
            if "text/csv" in content:  # streamed rows, not the JSON page
                content["text/csv"]["schema"] = {"type": "string"}
        return responses

    def _get_response_for_code(
        self, serializer, status_code, media_types=None, direction="response"
    ):
        if isinstance(serializer, OpenApiResponse) and isinstance(serializer.response, dict):
            # resolve serializers inside a raw oneOf (the 400 bodies)
            schema = dict(serializer.response)
            if "oneOf" in schema:
                schema["oneOf"] = [self._resolve(s, direction) for s in schema["oneOf"]]
            serializer = OpenApiResponse(schema, description=serializer.description)
        return super()._get_response_for_code(serializer, status_code, media_types, direction)

    def _resolve(self, item: Any, direction: str) -> dict:
        if isinstance(item, dict):
            return item
        return self.resolve_serializer(item, direction).ref

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        view = self.view
        checks = [p for p in getattr(view, "permission_classes", [])]
        errors: dict[str, OpenApiResponse] = {}
        parameters = [p for p in self._get_parameters() if p.get("in") == "query"]
        has_body = self.method in ("POST", "PUT", "PATCH")
        if parameters or has_body:
            errors["400"] = bad_request()
        if permissions.IsAuthenticated in checks:
            errors["401"] = detail(
                "No credentials, or invalid ones (`Authorization: Token <key>`)."
            )
        reading = self.method in permissions.SAFE_METHODS
        if (
            any(
                p not in (permissions.IsAuthenticated, permissions.AllowAny)
                and not (reading and getattr(p, "allows_reading", False))
                for p in checks
            )
            or not reading
        ):
            errors["403"] = detail("The caller's role may not do this.")
        if "{" in self.path or self._is_list_view():
            errors["404"] = detail("No such object (or no such page).")
        if has_body:
            errors["415"] = detail("A request body in a media type the operation does not read.")
        if getattr(view, "throttle_classes", None):
            errors["429"] = detail("Too many requests: throttled (see the Retry-After header).")
        return errors


class TooLargeErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    limit = serializers.CharField(
        required=False, help_text="The setting that limits it, e.g. STAMP_MAX_BYTES."
    )
    limit_bytes = serializers.IntegerField(required=False)


def too_large() -> OpenApiResponse:
    return OpenApiResponse(
        TooLargeErrorSerializer,
        description="The body (a file, the form fields, or the files' number) is over the "
        "ingest limits; refused while it arrives.",
    )


# The multipart tracklet upload: `metadata` (JSON text) and one file field per stamp, named as
# the metadata's `detections[i].stamp` say.
TRACKLET_UPLOAD_REQUEST = {
    "multipart/form-data": {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "string",
                "description": 'The tracklet as JSON: {"night": "YYYY-MM-DD", "tracklet": "id", '
                '"detections": [{"index": 0, "mjd": ..., "ra": ..., "dec": ..., "mag": ..., '
                '"x": ..., "y": ..., "stamp": "<file field name>"}, ...]}',
            }
        },
        "required": ["metadata"],
        "additionalProperties": {
            "type": "string",
            "format": "binary",
            "description": "A stamp (FITS, gzipped FITS, PNG or NPY), by its field name.",
        },
    }
}
