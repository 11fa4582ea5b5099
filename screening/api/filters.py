"""Filter and input fields the database can always take, nights as `screening.nights` reads
them everywhere, and enumerated query parameters: a value outside the enumeration is a 400
naming the parameter and the values it takes (`{"order": ["must be one of desc, asc,
informative, got 'AAA'"]}`), never a silent default."""

from __future__ import annotations

import datetime as dt

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request

from screening.nights import night_parse


class _UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time turned to UTC: PostgreSQL takes UTC offsets up to 15:59 only,
    ISO 8601 (and Python) up to 23:59; one whose UTC time is outside years 1 to 9999 is a 400."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError("date-time out of range", code="invalid") from None


class UTCIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = _UTCIsoDateTimeField


class _NightFormField(forms.DateField):
    """A night in a query (`?night=`): YYYY-MM-DD only, as ingest and the pages read it."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return night_parse(value, stored_range=False)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class NightFilter(filters.DateFilter):
    field_class = _NightFormField


class NightField(serializers.DateField):
    """A night in a request body: YYYY-MM-DD only, as ingest and the pages read it."""

    def to_internal_value(self, value):
        try:
            return night_parse(value, stored_range=False)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


def query_choice(request: Request, name: str, allowed, *, default: str) -> str:
    """An enumerated query parameter: one of `allowed`, or `default` when absent; anything
    else (the empty value too) is a ValidationError (400) naming it and the allowed values."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw in allowed:
        return raw
    raise ValidationError({name: [f"must be one of {', '.join(allowed)}, got {raw!r}"]})


class EnumFilter(filters.ChoiceFilter):
    """A choice filter whose refusal names the values it takes (django-filter's says only
    "Select a valid choice"); empty is no filter, as for every filter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = ", ".join(str(value) for value, _ in self.extra["choices"])
        messages = self.extra.setdefault("error_messages", {})
        messages["invalid_choice"] = f"must be one of {allowed}, got %(value)r"


class FormatNegotiation(DefaultContentNegotiation):
    """`?format=` takes the formats of the view's renderers (the schema's enum), not the
    browsable `api` page (that is `Accept: text/html`); any other value is a 400 naming the
    parameter and its values, not DRF's 404. Empty: by the Accept header. A URL's format suffix
    (`/bundles/3.json`) keeps DRF's answer: a suffix no renderer has is a path that is not
    there (404)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        self.from_suffix = format_suffix is not None
        return super().select_renderer(request, renderers, format_suffix)

    def filter_renderers(self, renderers, format):
        if getattr(self, "from_suffix", False):
            return super().filter_renderers(renderers, format)
        formats = [renderer.format for renderer in renderers if renderer.format != "api"]
        if format not in formats:
            raise ValidationError(
                {"format": [f"must be one of {', '.join(formats)}, got {format!r}"]}
            )
        return super().filter_renderers(renderers, format)
