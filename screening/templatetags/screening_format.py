"""The pages' template library: the number formats (`screening.web.formats`) as filters and
the queue row and stamp figure (`screening.web.rows`) as tags. Load with
`{% load screening_format %}`."""

from __future__ import annotations

from django import template

from screening.web import formats, rows

register = template.Library()

for _format in (formats.score, formats.sig, formats.percent, formats.duration):
    register.filter(_format.__name__, _format)
register.simple_tag(rows.queue_row)
register.simple_tag(rows.stamp_figure)
