"""The model page's table of what changed between a candidate and its base (no database)."""

from __future__ import annotations

import pytest

from screening.registry.comparison import comparison_table


def test_the_comparison_table_shows_what_changed_for_a_new_class() -> None:
    confusion = {"rows": ["AST", "GLARE"], "counts": None}
    comparison = {
        "new_classes": ["GLARE"],
        "synthetic": {
            "candidate": {
                "tracklets": {"real": 1500, "bogus": 1800},
                "at_model_threshold": {"real_recall": 0.996, "bogus_rejection": 0.99},
                "by_bogus_kind": {
                    "correlated-glare": {"tracklets": 180, "rejection_at_threshold": 0.98}
                },
                "passing_by_class": {"GLARE": {"tracklets": 250, "passing": 0.02}},
                "icn_confusion": {
                    **confusion,
                    "columns": ["AST", "GLARE"],
                    "counts": [[90, 10], [5, 95]],
                },
            },
            "base": {
                "tracklets": {"real": 1500, "bogus": 1800},
                "at_model_threshold": {"real_recall": 0.995, "bogus_rejection": 0.90},
                "by_bogus_kind": {
                    "correlated-glare": {"tracklets": 180, "rejection_at_threshold": 0.30}
                },
                "passing_by_class": {"GLARE": {"tracklets": 250, "passing": 0.55}},
                "icn_confusion": {**confusion, "columns": ["AST"], "counts": [[100], [100]]},
            },
            "paired_real": {
                "real": 1500,
                "lost": 1,
                "gained": 3,
                "candidate_kept": 1494,
                "base_kept": 1492,
            },
        },
        "holdout": {
            "candidate": {
                "tracklets": {"real": 40, "bogus": 60},
                "real_recall": 1.0,
                "bogus_rejection": 0.95,
            },
            "base": {
                "tracklets": {"real": 40, "bogus": 60},
                "real_recall": 1.0,
                "bogus_rejection": 0.6,
            },
        },
        "holdout_new_classes": {"GLARE": {"tracklets": 20, "candidate": 0.05, "base": 0.7}},
        "holdout_stamps": {
            "candidate": {"per_class": {"GLARE": 0.93}, "per_class_stamps": {"GLARE": 75}},
            "base": {"per_class": {"GLARE": 0.0}, "per_class_stamps": {"GLARE": 75}},
        },
    }
    rows = {(r["figure"], r["data"]): r for r in comparison_table(comparison, ["AST", "GLARE"])}
    glare = rows[("GLARE tracklets passing (every stamp GLARE)", "fixed synthetic set")]
    assert glare["n"] == 180 and glare["candidate"] == pytest.approx(0.02)
    assert glare["base"] == pytest.approx(0.70)
    assert (
        rows[("real tracklets lost / gained against the base", "fixed synthetic set")]["candidate"]
        == 1
    )
    assert rows[("real recall", "held-out labels")]["n"] == 40
    stamp = rows[("GLARE stamps: recall", "fixed synthetic set")]
    assert stamp["candidate"] == pytest.approx(0.95) and stamp["base"] is None  # no such class
    assert rows[("AST stamps: recall", "fixed synthetic set")]["base"] == pytest.approx(1.0)
    held = rows[("GLARE stamps: recall", "held-out labels")]
    assert held["n"] == 75 and held["base"] is None
    # a class the base does not have is marked so (a page reads "not in this model", not 0%)
    assert stamp["base_lacks_class"] and held["base_lacks_class"]
    assert not rows[("AST stamps: recall", "fixed synthetic set")]["base_lacks_class"]
    assert rows[("bogus tracklets with a stamp labelled GLARE passing", "held-out labels")][
        "base"
    ] == pytest.approx(0.7)
    first = comparison_table(comparison, ["AST", "GLARE"])[0]
    assert first["figure"] == "real recall"  # keeping real tracklets comes first


@pytest.mark.django_db
def test_a_refused_candidate_s_page_lists_the_real_tracklets_it_loses_and_why(client, reviewer):
    """Where the promotion rule refuses a candidate for losing real tracklets, the model page
    names them: the held-out ones by a link to their page, the synthetic ones by number, each
    with both scores and the stamps the candidate reads as another class."""
    from screening.models import ModelVersion
    from tests.stamps import PAPER_CLASSES, ingest_tracklet

    active = ModelVersion.objects.create(
        version="a" * 16, checkpoint="/m/a.pt", classes=PAPER_CLASSES, is_active=True
    )
    judged = ingest_tracklet("REAL1")
    why = "stamp 2: COMET 0.72 -> GLARE 0.81"
    comparison = {
        "base_version": active.version,
        "holdout": {
            "candidate": {"tracklets": {"real": 40, "bogus": 0}, "real_recall": 0.975},
            "base": {"tracklets": {"real": 40, "bogus": 0}, "real_recall": 1.0},
        },
        "holdout_lost": [
            {"tracklet": str(judged.pk), "base_score": 0.99, "candidate_score": 0.02,
             "stamps_changed": [why], "why": why},
        ],
        "synthetic": {
            "paired_real": {
                "real": 1500, "lost": 2, "gained": 0, "candidate_kept": 1494, "base_kept": 1496,
                "lost_tracklets": [
                    {"tracklet": "synthetic real #812", "snr": 6.1, "rate_deg_day": 0.4,
                     "base_score": 0.41, "candidate_score": 0.2, "stamps_changed": [],
                     "why": "same stamp classes; the TCN scores it lower"},
                ],
            },
        },
    }  # fmt: skip
    candidate = ModelVersion.objects.create(
        version="c" * 16,
        checkpoint="/m/c.pt",
        classes=[*PAPER_CLASSES, "GLARE"],
        metrics={"comparison": comparison},
    )
    client.force_login(reviewer)
    page = client.get(f"/models/{candidate.version}/").content.decode()
    assert 'class="refused"' in page and "real recall 0.9750 is below" in page
    table = page.split('id="lost-real-tracklets"')[1].split("</table>")[0]
    assert f'<a href="/tracklets/{judged.pk}/">{judged.pk}</a>' in table
    assert "0.990 → 0.020" in table and "stamp 2: COMET 0.72 -&gt; GLARE 0.81" in table
    assert "synthetic real #812" in table and "SNR 6.1, 0.40°/day" in table
    assert "the TCN scores it lower" in table
    # a model that loses nothing has no such section
    page = client.get(f"/models/{active.version}/").content.decode()
    assert 'id="lost-real-tracklets"' not in page
