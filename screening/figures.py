"""PNG bytes of a matplotlib figure, one at a time.

Matplotlib is not thread-safe: two figures drawn at once in a threaded server (runserver, or
gunicorn with threads) can break its mathtext parser (a log axis's tick labels) and answer 500.
Every page's figure is drawn through `figure_png`, under one process-wide lock.
"""

from __future__ import annotations

import io
import threading

_draw_lock = threading.Lock()


def figure_png(figure) -> bytes:
    with _draw_lock:
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
