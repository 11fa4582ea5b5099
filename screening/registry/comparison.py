"""What changed between a candidate and the model it was trained from, as the model page shows
it: rows of figures from the comparison a retraining run stores with its candidate
(`metrics["comparison"]`, made by `classifier.retrain`).

Plain dicts in, plain dicts out: no Django, no PyTorch (the web process imports it cheaply).
"""

from __future__ import annotations

from typing import Any


def comparison_table(comparison: dict[str, Any], classes: list[str]) -> list[dict[str, Any]]:
    """What changed between candidate and base, one row per figure: {"figure", "data", "n",
    "candidate", "base", "kind"} (kind "share", or "count" for the paired real tracklets); a
    model without a class has None. Rows: real recall on the same tracklets (fixed synthetic
    set, paired, and held-out labels), bogus rejection, tracklets of each new class passing,
    and each class's stamp recall (new classes first)."""
    rows: list[dict[str, Any]] = []
    new = list(comparison.get("new_classes") or [])
    synthetic = comparison.get("synthetic") or {}
    cand, base = synthetic.get("candidate") or {}, synthetic.get("base") or {}
    holdout = comparison.get("holdout") or {}

    def add(figure, data, n, c, b, kind="share", base_lacks=False):
        rows.append(
            {
                "figure": figure,
                "data": data,
                "n": n,
                "candidate": c,
                "base": b,
                "kind": kind,
                "base_lacks_class": base_lacks,
            }
        )

    if cand:
        at_c, at_b = cand.get("at_model_threshold") or {}, base.get("at_model_threshold") or {}
        n_real = (cand.get("tracklets") or {}).get("real")
        add(
            "real recall",
            "fixed synthetic set",
            n_real,
            at_c.get("real_recall"),
            at_b.get("real_recall"),
        )
        paired = synthetic.get("paired_real")
        if paired:
            add(
                "real tracklets lost / gained against the base",
                "fixed synthetic set",
                paired["real"],
                paired["lost"],
                paired["gained"],
                kind="count",
            )
    hc, hb = holdout.get("candidate") or {}, holdout.get("base") or {}
    if (hc.get("tracklets") or {}).get("real"):
        add(
            "real recall",
            "held-out labels",
            hc["tracklets"]["real"],
            hc.get("real_recall"),
            hb.get("real_recall"),
        )
    if cand:
        add(
            "bogus rejection",
            "fixed synthetic set",
            (cand.get("tracklets") or {}).get("bogus"),
            at_c.get("bogus_rejection"),
            at_b.get("bogus_rejection"),
        )
    if (hc.get("tracklets") or {}).get("bogus"):
        add(
            "bogus rejection",
            "held-out labels",
            hc["tracklets"]["bogus"],
            hc.get("bogus_rejection"),
            hb.get("bogus_rejection"),
        )
    for cls in new:
        kind = (cand.get("by_bogus_kind") or {}).get(f"correlated-{cls.lower()}")
        base_kind = (base.get("by_bogus_kind") or {}).get(f"correlated-{cls.lower()}")
        if kind:
            add(
                f"{cls} tracklets passing (every stamp {cls})",
                "fixed synthetic set",
                kind["tracklets"],
                1 - kind["rejection_at_threshold"],
                None if not base_kind else 1 - base_kind["rejection_at_threshold"],
            )
        anyc = (cand.get("passing_by_class") or {}).get(cls)
        anyb = (base.get("passing_by_class") or {}).get(cls)
        if anyc:
            add(
                f"bogus tracklets with a {cls} stamp passing",
                "fixed synthetic set",
                anyc["tracklets"],
                anyc["passing"],
                anyb and anyb["passing"],
            )
        held = (comparison.get("holdout_new_classes") or {}).get(cls)
        if held:
            add(
                f"bogus tracklets with a stamp labelled {cls} passing",
                "held-out labels",
                held["tracklets"],
                held.get("candidate"),
                held.get("base"),
            )
    confusions = {
        name: (side.get("icn_confusion") or {})
        for name, side in (("candidate", cand), ("base", base))
    }
    held_stamps = comparison.get("holdout_stamps") or {}
    order = new + [c for c in classes if c not in new]
    for cls in order:
        recalls = {name: _class_recall(conf, cls) for name, conf in confusions.items()}
        if recalls["candidate"][1]:
            add(
                f"{cls} stamps: recall",
                "fixed synthetic set",
                recalls["candidate"][1],
                recalls["candidate"][0],
                recalls["base"][0],
                base_lacks=cls in new,
            )
        hs_c = held_stamps.get("candidate") or {}
        n = (hs_c.get("per_class_stamps") or {}).get(cls)
        if n:
            hs_b = held_stamps.get("base") or {}
            add(
                f"{cls} stamps: recall",
                "held-out labels",
                n,
                (hs_c.get("per_class") or {}).get(cls),
                (hs_b.get("per_class") or {}).get(cls) if cls not in new else None,
                base_lacks=cls in new,
            )
    return rows


def _class_recall(conf: dict[str, Any], cls: str) -> tuple[float | None, int]:
    """(recall, stamps) of one true class in a confusion matrix; None where the model has no
    such class."""
    rows, columns = conf.get("rows") or [], conf.get("columns") or []
    if cls not in rows:
        return None, 0
    counts = conf["counts"][rows.index(cls)]
    n = int(sum(counts))
    if cls not in columns or not n:
        return None, n
    return counts[columns.index(cls)] / n, n
