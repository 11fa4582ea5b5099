"""The pages' template library: the number formats (`screening.web.formats`) as filters and
the queue row and stamp figure (`screening.web.rows`) as tags, and user- or model-supplied names
isolated in `<bdi>` (`{{ name|bdi }}`, `{{ names|bdi_join }}`). Load with
`{% load screening_format %}`."""

from __future__ import annotations

from django import template

from screening.web import formats, rows

register = template.Library()

for _format in (formats.score, formats.sig, formats.percent, formats.duration):
    register.filter(_format.__name__, _format)
register.filter("bdi", rows.name_html)
register.filter("bdi_join", rows.names_html)
register.simple_tag(rows.queue_row)
register.simple_tag(rows.stamp_figure)
