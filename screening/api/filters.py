"""Filter fields the database can always take."""

from __future__ import annotations

import datetime as dt

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField


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
