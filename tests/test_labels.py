"""Every state people can see has its Chinese label."""

from approval.core.labels import label
from storage import enums

SHOWN = (
    enums.ProjectStatus,
    enums.StageStatus,
    enums.TaskStatus,
    enums.Decision,
    enums.MaterialStatus,
    enums.ProjectType,
    enums.RegionKind,
    enums.DepartmentLevel,
    enums.Role,
    enums.ObjectKind,
    enums.UploadStatus,
)


def test_every_shown_state_has_a_chinese_label() -> None:
    missing = [f"{e.__name__}.{m.name}" for e in SHOWN for m in e if not _has(m)]
    assert missing == []


def _has(member: object) -> bool:
    try:
        text = label(member)
    except KeyError:
        return False
    return bool(text) and not text.isascii()
