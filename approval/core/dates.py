"""Beijing time: the service center's zone and the local date of a moment, in one home.

Deadlines, warnings and reports count days as they fall in Beijing, whatever zone a moment
arrives in; every module asks here rather than converting on its own.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
"""The center's zone (China has one): 'today' and every calendar day are counted in it."""


def local_day(moment: datetime) -> date:
    """The Beijing date of an aware moment."""
    return moment.astimezone(CHINA).date()
