"""Filter and input fields the database can always take, and nights as `screening.nights` reads
them everywhere."""

from __future__ import annotations

import datetime as dt

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers

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
