"""Number formats of the pages: scores that keep their order near 0 and 1, thresholds with a few
significant digits, percentages with two decimals.

Load with `{% load screening_format %}`.
"""

from __future__ import annotations

import html
import math
from functools import wraps

from django import template
from django.utils.safestring import mark_safe

register = template.Library()

NONE = "—"
SCORE_DECIMALS = 3
# Below this distance from 0 or 1, three decimals would read 0.000 or 1.000: show the distance.
SCORE_EDGE = 0.5 * 10**-SCORE_DECIMALS


def _number(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numeric(format_number):
    """A filter of a finite number; anything else (None, "", text, NaN) reads NONE."""

    @wraps(format_number)
    def apply(value: object, *args) -> str:
        number = _number(value)
        return NONE if number is None else format_number(number, *args)

    return apply


def _scientific(value: float) -> str:
    """2 significant digits, a plain exponent: 3.2e-5 (not 3.2e-05)."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@register.filter
@_numeric
def score(number: float) -> str:
    """A tracklet score in [0, 1], with the digits that tell neighbouring rows apart.

    0.0005 to 0.9995: three decimals (0.950). Nearer 1: the distance to 1 with two significant
    digits, "1 − 3.2e-5" (0.999968); nearer 0: the score itself, "3.2e-5". Exactly 1 or 0: "1", "0".
    So the order of the rows shows in the numbers even where a night's top is all 0.9999...
    """
    if number >= 1.0:
        return "1"
    if number <= 0.0:
        return "0"
    if number >= 1.0 - SCORE_EDGE:
        return f"1 − {_scientific(1.0 - number)}"
    if number < SCORE_EDGE:
        return _scientific(number)
    return f"{number:.{SCORE_DECIMALS}f}"


@register.filter
@_numeric
def sig(number: float, digits: int = 4) -> str:
    """A number with `digits` significant digits (a threshold of 0.10581812 reads 0.1058)."""
    return f"{number:.{int(digits)}g}"


@register.filter
@_numeric
def percent(number: float, decimals: int = 2) -> str:
    """A fraction as a percentage with `decimals` decimals: 0.99333 reads 99.33%."""
    return f"{100.0 * number:.{int(decimals)}f}%"


@register.filter
@_numeric
def duration(seconds: float) -> str:
    """A span of time in its largest sensible units: 45 s, 12.5 min, 3.2 h, 4.1 days."""
    if seconds < 0:
        return f"−{duration(-seconds)}"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _e(value: object) -> str:
    """HTML-escaped text (the standard library's escape: Django's, for every value of 250
    stamps a page, was a tenth of the page's time)."""
    return html.escape(str(value), quote=True)


@register.simple_tag
def stamp_figure(stamp, size: int, blind: bool = False) -> str:
    """One stamp of a strip (a `screening.queue.StampView`): image, class caption, label.

    Rendered here rather than by an `{% include %}` per stamp: a queue page has 200 of them,
    and an include costs about ten times as much (bench/queue_page.py)."""
    if stamp.top_class:
        caption = f'<span class="cls">{_e(stamp.caption)}</span>'
    elif blind:
        caption = '<span class="muted">class after verdict</span>'
    else:
        caption = '<span class="muted">not scored</span>'
    distribution = _e(stamp.distribution)
    label = f"→ {_e(stamp.label)}" if stamp.label else ""
    return mark_safe(
        f'<figure class="stamp" data-detection="{stamp.detection.pk}" data-dist="{distribution}"'
        f' title="{distribution}" tabindex="-1"><img src="{_e(stamp.url)}" width="{int(size)}"'
        f' height="{int(size)}" alt="stamp {stamp.detection.index + 1}"><figcaption>{caption} '
        f'<span class="label" data-label>{label}</span></figcaption></figure>'
    )


@register.simple_tag
def queue_row(row) -> str:
    """One row of the queue (a `screening.queue.QueueRow`), as the page and its keys expect it.

    Rendered in Python: a page of 50 rows through the template language cost about half of
    the page's server time (bench/queue_page.py)."""
    t = row.tracklet
    classes = "qrow"
    if row.auto_rejected:
        classes += " rejected"
    if row.my_verdict == "real":
        classes += " judged-real"
    elif row.my_verdict == "bogus":
        classes += " judged-bogus"
    if row.taken:
        classes += " taken"
    if row.blind:
        status = '<span class="status status-blind">to review</span>'
    else:
        shown = "auto-rejected" if row.auto_rejected else t.status
        status = f'<span class="status status-{_e(t.status)}">{_e(shown)}</span>'
    mine = f"you: {row.my_verdict}" if row.my_verdict in ("real", "bogus") else ""
    disagree = ""
    if row.disagreement:
        disagree = (
            '<span class="disagree" title="reviewers disagree">'
            f"⚠ {row.verdicts.get('real', 0)} real / {row.verdicts.get('bogus', 0)} bogus</span>"
        )
    strip = "".join(stamp_figure(s, 104, row.blind) for s in row.stamps)
    if row.blind:
        facts = (
            '<div class="score blind" title="blind screening: the score shows after your '
            'verdict">?</div>\n      <div class="muted small">score after your verdict</div>'
        )
    else:
        title = f' title="score {t.score}"' if t.score is not None else ""
        model = f"model {_e(t.model_version.version[:8])}" if t.model_version_id else "not scored"
        facts = (
            f'<div class="score"{title}>{_e(score(t.score))}</div>\n'
            f'      <div class="muted small">{model}</div>'
        )
    url = _e(row.url)
    return mark_safe(
        f'<article class="{classes}" data-tracklet="{t.pk}" data-detail="{url}" '
        f'data-verdict="{_e(row.my_verdict if mine else "")}" data-blind="{int(row.blind)}">\n'
        '    <div class="ident">\n'
        f'      <a href="{url}" class="tid">{_e(t.survey_id)}</a>\n      {status}\n'
        f'      <span class="mine" data-mine>{mine}</span>\n      {disagree}\n'
        f'      <span class="taken-by" data-taken>{_e(row.taken)}</span>\n'
        '      <span class="save-state" data-save role="status"></span>\n    </div>\n'
        f'    <div class="strip">{strip}</div>\n'
        f'    <div class="facts">\n      {facts}\n'
        f'      <div><span class="arrow" style="transform: rotate({row.arrow_rotation:.0f}deg)">'
        f"↑</span> {t.rate_deg_per_day:.2f}°/day, PA {t.position_angle_deg:.0f}°</div>\n"
        f"      <div>mag {t.mean_mag:.1f} · {t.n_detections} det.</div>\n"
        '      <div class="buttons"><button type="button" data-action="real">Real <kbd>r</kbd>'
        '</button><button type="button" data-action="bogus">Bogus <kbd>b</kbd></button></div>\n'
        "    </div>\n  </article>"
    )
