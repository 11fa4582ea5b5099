"""Number formats of the pages: scores that keep their order near 0 and 1, thresholds with a few
significant digits, percentages with two decimals.

Load with `{% load screening_format %}`.
"""

from __future__ import annotations

import math
from functools import wraps

from django import template

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


@register.simple_tag
def stamp_figure(stamp, size: int, blind: bool = False) -> str:
    """One stamp of a strip (a `screening.queue.StampView`): image, class caption, label.

    Rendered here rather than by an `{% include %}` per stamp: a queue page has 200 of them,
    and an include costs about ten times as much (bench/queue_page.py)."""
    from django.utils.html import format_html

    if stamp.top_class:
        caption = format_html('<span class="cls">{}</span>', stamp.caption)
    elif blind:
        caption = format_html('<span class="muted">{}</span>', "class after verdict")
    else:
        caption = format_html('<span class="muted">{}</span>', "not scored")
    distribution = stamp.distribution
    return format_html(
        '<figure class="stamp" data-detection="{}" data-dist="{}" title="{}" tabindex="-1">'
        '<img src="{}" width="{}" height="{}" alt="stamp {}"><figcaption>{} '
        '<span class="label" data-label>{}</span></figcaption></figure>',
        stamp.detection.pk,
        distribution,
        distribution,
        stamp.url,
        size,
        size,
        stamp.detection.index + 1,
        caption,
        f"→ {stamp.label}" if stamp.label else "",
    )


@register.simple_tag
def queue_row(row) -> str:
    """One row of the queue (a `screening.queue.QueueRow`), as the page and its keys expect it.

    Rendered in Python: a page of 50 rows through the template language cost about half of
    the page's server time (bench/queue_page.py)."""
    from django.utils.html import format_html
    from django.utils.safestring import mark_safe

    t = row.tracklet
    classes = "qrow"
    if row.auto_rejected:
        classes += " rejected"
    if row.my_verdict == "real":
        classes += " judged-real"
    elif row.my_verdict == "bogus":
        classes += " judged-bogus"
    if row.blind:
        status = format_html('<span class="status status-blind">{}</span>', "to review")
    else:
        status = format_html(
            '<span class="status status-{}">{}</span>',
            t.status,
            "auto-rejected" if row.auto_rejected else t.status,
        )
    mine = f"you: {row.my_verdict}" if row.my_verdict in ("real", "bogus") else ""
    disagree = ""
    if row.disagreement:
        disagree = format_html(
            '<span class="disagree" title="reviewers disagree">⚠ {} real / {} bogus</span>',
            row.verdicts.get("real", 0),
            row.verdicts.get("bogus", 0),
        )
    strip = mark_safe("".join(stamp_figure(s, 104, row.blind) for s in row.stamps))
    if row.blind:
        facts = mark_safe(
            '<div class="score blind" title="blind screening: the score shows after your '
            'verdict">?</div>\n      <div class="muted small">score after your verdict</div>'
        )
    else:
        title = format_html(' title="score {}"', t.score) if t.score is not None else ""
        model = (
            format_html("model {}", t.model_version.version[:8])
            if t.model_version_id
            else "not scored"
        )
        facts = format_html(
            '<div class="score"{}>{}</div>\n      <div class="muted small">{}</div>',
            title,
            score(t.score),
            model,
        )
    return format_html(
        '<article class="{}" data-tracklet="{}" data-detail="{}" data-verdict="{}">\n'
        '    <div class="ident">\n'
        '      <a href="{}" class="tid">{}</a>\n      {}\n'
        '      <span class="mine" data-mine>{}</span>\n      {}\n    </div>\n'
        '    <div class="strip">{}</div>\n'
        '    <div class="facts">\n      {}\n'
        '      <div><span class="arrow" style="transform: rotate({}deg)">↑</span> '
        "{}°/day, PA {}°</div>\n"
        "      <div>mag {} · {} det.</div>\n"
        '      <div class="buttons"><button type="button" data-action="real">Real <kbd>r</kbd>'
        '</button><button type="button" data-action="bogus">Bogus <kbd>b</kbd></button></div>\n'
        "    </div>\n  </article>",
        classes,
        t.pk,
        row.url,
        row.my_verdict or "",
        row.url,
        t.survey_id,
        status,
        mine,
        disagree,
        strip,
        facts,
        f"{row.arrow_rotation:.0f}",
        f"{t.rate_deg_per_day:.2f}",
        f"{t.position_angle_deg:.0f}",
        f"{t.mean_mag:.1f}",
        t.n_detections,
    )
