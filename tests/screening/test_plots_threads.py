"""Pages' figures drawn from many threads at once (runserver and threaded servers do this: the
model page asks for its plots together) all come out, none a 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from screening.reports.night_summary import score_histogram_figure


def test_figures_drawn_from_many_threads_at_once_all_come_out():
    rng = np.random.default_rng(0)
    groups = {"not judged": list(rng.random(500)), "bogus": list(rng.random(300) * 0.3)}

    def draw(i: int) -> bytes:
        # a log axis: its tick labels go through matplotlib's (not thread-safe) mathtext parser
        return score_histogram_figure(groups, [0.3], f"figure {i}", empty="none")

    with ThreadPoolExecutor(max_workers=8) as pool:
        pngs = list(pool.map(draw, range(24)))
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in pngs)
    assert all(len(png) > 5000 for png in pngs)  # whole figures, not blank ones
