"""Traffic lights of open department tasks (红/黄/绿牌), as queues and the wall chart show them.

A task is RED once its deadline has passed (or the supervisor loop flagged it red), YELLOW
within the warning window of working days (or once the loop warned), GREEN otherwise; a
stopped clock (计时中止) shows PAUSED and no working days left. The supervisor loop
(:mod:`approval.oversight.supervision`) fires the same levels as events; the lights read both,
so a screen agrees with the warnings already sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from approval.core.workdays import WorkingCalendar
from storage.enums import WarningLevel
from storage.models import SupervisionEvent, Task

DEFAULT_WARN_WORKING_DAYS = 1  # as the loop's default (ONEWINDOW_WARN_WORKING_DAYS)
_CHUNK = 500  # ids per statement (SQLite limits the parameters of one)


class Light(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    PAUSED = "paused"


LIGHT_LABELS = {
    Light.GREEN: "正常",
    Light.YELLOW: "临期",
    Light.RED: "超期",
    Light.PAUSED: "计时中止",
}
_RANK = {Light.PAUSED: 0, Light.GREEN: 1, Light.YELLOW: 2, Light.RED: 3}


def rank(light: Light) -> int:
    """How urgent a light is: PAUSED 0, GREEN 1, YELLOW 2, RED 3."""
    return _RANK[light]


def worst(lights: Iterable[Light]) -> Light | None:
    """The most urgent of ``lights`` (None when there are none)."""
    return max(lights, key=rank, default=None)


@dataclass(frozen=True)
class TaskClock:
    """Where an open task stands against its deadline."""

    working_days_left: int | None  # negative: working days overdue; None while paused
    light: Light


def task_clock(
    task: Task,
    *,
    today: date,
    calendar: WorkingCalendar,
    warned: WarningLevel | None = None,
    warn_working_days: int = DEFAULT_WARN_WORKING_DAYS,
) -> TaskClock:
    """The light of an open task; may raise CalendarUnknownError."""
    if task.paused_at is not None:
        return TaskClock(working_days_left=None, light=Light.PAUSED)
    if task.deadline < today:
        return TaskClock(-calendar.working_days_between(task.deadline, today), Light.RED)
    left = calendar.working_days_between(today, task.deadline)
    if warned is WarningLevel.RED:
        light = Light.RED
    elif warned is WarningLevel.YELLOW or left <= warn_working_days:
        light = Light.YELLOW
    else:
        light = Light.GREEN
    return TaskClock(working_days_left=left, light=light)


async def warned_levels(task_ids: Iterable[int]) -> dict[int, WarningLevel]:
    """The highest level the supervisor loop fired for each task (tasks never warned left out)."""
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    levels: dict[int, WarningLevel] = {}
    rows: list[tuple[int, str]] = []
    for start in range(0, len(ids), _CHUNK):
        rows.extend(
            await SupervisionEvent.filter(
                entity_type="task", entity_id__in=ids[start : start + _CHUNK], level__isnull=False
            ).values_list("entity_id", "level")
        )
    for task_id, level in rows:
        current = levels.get(int(task_id))
        level = WarningLevel(level)
        if current is None or (current is WarningLevel.YELLOW and level is WarningLevel.RED):
            levels[int(task_id)] = level
    return levels
