"""The queue row's HTML and a stamp's figure, as the queue page, the tracklet page and the
verdict endpoint's answer show them (the page's keys and script read their data attributes), and
class names isolated for the pages (`<bdi>`: a right-to-left name cannot reorder its line).

Rendered in Python rather than by template includes: a queue page has 50 rows and 200 stamps, and
the template language cost about half of the page's server time (bench/queue_page.py). Templates
use them as tags (`{% load screening_format %}`: `{% queue_row row %}`, `{% stamp_figure ... %}`).
"""

from __future__ import annotations

import functools
import html
from typing import NamedTuple

from django.utils.safestring import mark_safe

from screening.web.formats import score


def _e(value: object) -> str:
    """HTML-escaped text (the standard library's escape: Django's, for every value of 250
    stamps a page, was a tenth of the page's time)."""
    return html.escape(str(value), quote=True)


def _name(value: object) -> str:
    """A name from a user or a model (a stamp class), escaped and isolated in a <bdi>, so that
    right-to-left text or a direction control in it cannot reorder the text around it."""
    return f"<bdi>{_e(value)}</bdi>"


def name_html(value: object) -> str:
    """The template filter `bdi`: a class name as isolated HTML (`{{ name|bdi }}`)."""
    return mark_safe(_name(value))


def names_html(values, separator: str = ", ") -> str:
    """The template filter `bdi_join`: names, each isolated, joined (`{{ names|bdi_join }}`)."""
    return mark_safe(_e(separator).join(_name(v) for v in values))


def _isolated(value: object) -> str:
    """The same for attribute text (a tooltip), with the isolating characters FSI ... PDI."""
    return f"\u2068{value}\u2069"


class ClassTexts(NamedTuple):
    """A class name as a stamp figure writes it. Escaping acts on each character alone, so
    escaped parts joined by ", " and digits are the escaped whole."""

    attribute: str  # escaped (data-dist)
    tooltip: str  # escaped within FSI ... PDI (title)
    html: str  # isolated HTML (`_name`)


@functools.lru_cache(maxsize=1024)
def _class_texts(name: str) -> ClassTexts:
    """A class name's texts, made once a process (a page has 200 stamps of 8 classes)."""
    return ClassTexts(_e(name), _e(_isolated(name)), _name(name))


def stamp_figure(stamp, size: int, blind: bool = False) -> str:
    """One stamp of a strip (a `screening.review.queue.StampView`): image, class caption, label.

    Rendered here rather than by an `{% include %}` per stamp: a queue page has 200 of them,
    and an include costs about ten times as much (bench/queue_page.py)."""
    if stamp.top_class:
        caption = (
            f'<span class="cls">{_class_texts(stamp.top_class).html} {stamp.top_probability:.2f}'
            "</span>"
        )
    elif blind:
        caption = '<span class="muted">class after verdict</span>'
    else:
        caption = '<span class="muted">not scored</span>'
    # each probability formatted once, for the page's popup (data-dist) and the tooltip
    shown = [(_class_texts(name), f"{p:.3f}") for name, p in stamp.probabilities]
    distribution = ", ".join(f"{texts.attribute} {p}" for texts, p in shown)
    title = ", ".join(f"{texts.tooltip} {p}" for texts, p in shown)
    label = f"→ {_class_texts(stamp.label).html}" if stamp.label else ""
    return mark_safe(
        f'<figure class="stamp" data-detection="{stamp.detection.pk}" data-dist="{distribution}"'
        f' title="{title}" tabindex="-1"><img src="{_e(stamp.url)}" width="{int(size)}"'
        f' height="{int(size)}" alt="stamp {stamp.detection.index + 1}"><figcaption>{caption} '
        f'<span class="label" data-label>{label}</span></figcaption></figure>'
    )


def _mag(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "—"


def digest2_line(t) -> str:
    """The row's digest2 NEO score (D2, the MPC's), marked when the tracklet is an NEO candidate;
    why there is none when digest2 could not score it. Shown on blind rows too: it is the
    astrometry's verdict on the orbit, not the model's on the stamps."""
    from screening.scoring.digest2 import neo_candidate

    if t.digest2_neo is None:
        why = t.digest2_problem or "digest2 has not scored it yet"
        return f'<div class="d2 muted small" title="{_e(why)}">D2 –</div>'
    noid = t.digest2_scores.get("noid", {})
    top = sorted(((v, k) for k, v in noid.items() if k not in ("Int", "NEO")), reverse=True)[:2]
    title = _e(f"digest2 no-ID scores: NEO {t.digest2_neo:.0f}"
               + "".join(f", {k} {v:.0f}" for v, k in top) + f" ({t.digest2_version})")  # fmt: skip
    if neo_candidate(t.digest2_neo):
        return (f'<div class="d2 d2-neo" title="{title}">D2 {min(t.digest2_neo, 100):.0f} · '
                "NEO candidate</div>")  # fmt: skip
    return f'<div class="d2" title="{title}">D2 {min(t.digest2_neo, 100):.0f}</div>'


def unlike_line(t) -> str:
    """Why the tracklet is unlike its model's training data (classifier.novelty), if it is:
    such a row stays in the to-review queue whatever its score. Shown on blind rows too: it
    says what the input is, not what the model made of it."""
    if not t.unlike_training:
        return ""
    return (
        f'<div class="unlike" title="{_e(t.unlike_training)}">⚑ unlike training: '
        f"{_e(t.unlike_training)}</div>"
    )


def not_moving_line(row) -> str:
    """Why the motion rule capped the tracklet's score (classifier.motion), if it did. Not on
    blind rows: it tells what the model made of it."""
    t = row.tracklet
    if not t.not_moving or row.blind:
        return ""
    return f'<div class="still" title="{_e(t.not_moving)}">⊘ not moving: {_e(t.not_moving)}</div>'


def queue_row(row) -> str:
    """One row of the queue (a `screening.review.queue.QueueRow`), as the page and its keys
    expect it.

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
        f"      <div>mag {_mag(t.mean_mag)} · {t.n_detections} det.</div>\n"
        f"      {digest2_line(t)}\n"
        f"      {unlike_line(t)}\n"
        f"      {not_moving_line(row)}\n"
        '      <div class="buttons"><button type="button" data-action="real">Real <kbd>r</kbd>'
        '</button><button type="button" data-action="bogus">Bogus <kbd>b</kbd></button></div>\n'
        "    </div>\n  </article>"
    )
