"""好差评: the applicant rates a completed stage or company setup with the code the SMS gave,
1 to 5.

The code is the credential: no login is needed to rate. A bad rating (2 or less) opens a
follow-up (回访整改) that the center's supervisors close within 15 working days.
Also here: what supervisors may list of the outbox and the ratings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from tortoise.expressions import Q, Subquery
from tortoise.functions import Count
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from approval.core import audit, throttle
from approval.core.access import Viewer, project_scope, require_role, setup_scope
from approval.core.calendar import working_calendar
from approval.core.dates import local_day
from approval.core.errors import DomainError, ErrorCode, invalid, not_found
from approval.core.workdays import CalendarUnknownError
from storage.enums import NotificationStatus, Role, SetupStatus, StageStatus
from storage.models import CompanySetup, Notification, Project, Rating, Stage

MIN_SCORE = 1
MAX_SCORE = 5
BAD_SCORE = 2  # this or less opens a follow-up
FOLLOW_UP_WORKING_DAYS = 15
MAX_COMMENT = 1000
MAX_CODE = 16  # the longest rating code the table holds (rating.code)
MAX_NOTE = 2000


async def rate_service(
    *, code: str, score: int, comment: str, now: datetime, client: str | None = None
) -> Rating:
    """Record the applicant's rating of the completed stage the code was sent for. Anyone may
    try a code, so unknown codes are throttled per client address (TOO_MANY_ATTEMPTS)."""
    key = throttle.rating_key(client)
    await throttle.check(key=key, policy=throttle.RATING, now=now)
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise invalid(
            f"score must be a whole number from {MIN_SCORE} (very dissatisfied) to "
            f"{MAX_SCORE} (very satisfied), got {score}",
            field="score",
        )
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise invalid(
            f"the comment has {len(comment)} characters; shorten it to {MAX_COMMENT}",
            field="comment",
        )
    normalized = "".join(code.split()).upper()
    if not normalized:
        raise invalid("give the rating code from the SMS", field="code")
    rating = await Rating.get_or_none(code=normalized) if len(normalized) <= MAX_CODE else None
    if rating is None:
        await throttle.failed(key=key, policy=throttle.RATING, now=now)
        raise DomainError(
            ErrorCode.NOT_FOUND,
            f"rating code {normalized!r} is unknown; check the code in the SMS",
            field="code",
        )
    project_id, service = await _completed_service(rating)
    follow_up_due = None
    today = local_day(now)
    if score <= BAD_SCORE:
        try:
            calendar = await working_calendar(years=[today.year])
            follow_up_due = calendar.add_working_days(today, FOLLOW_UP_WORKING_DAYS)
        except CalendarUnknownError as error:
            raise DomainError(ErrorCode.CALENDAR_UNKNOWN, str(error), field="score") from None
    async with in_transaction():
        locked = await Rating.select_for_update().get(id=rating.id)
        if locked.rated_at is not None:
            raise DomainError(
                ErrorCode.ALREADY_RATED,
                "this service was already rated with this code and a rating cannot be "
                "changed; contact the service center if something is wrong",
                field="code",
            )
        locked.score = score
        locked.comment = comment
        locked.rated_at = now
        locked.follow_up_due = follow_up_due
        await locked.save(update_fields=["score", "comment", "rated_at", "follow_up_due"])
        await audit.record(
            actor_id=None,
            action="rating.submit",
            entity_type="rating",
            entity_id=locked.id,
            project_id=project_id,
            after={
                "score": score,
                **service,
                "followUpDue": follow_up_due.isoformat() if follow_up_due else None,
            },
        )
    return locked


async def _completed_service(rating: Rating) -> tuple[int | None, dict[str, str]]:
    """The project of the service a rating is for, and how the audit names it (its stage's
    code or its setup's receipt code); INVALID_STATE while the service is not completed."""
    if rating.setup_id is not None:
        setup = await CompanySetup.get(id=rating.setup_id)
        if setup.status not in (SetupStatus.ISSUED, SetupStatus.REFUSED):
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the service is not completed: company setup {setup.code} is "
                f"{setup.status.value}; rate it once it is completed",
                field="code",
            )
        return setup.project_id, {"setup": setup.code}
    stage = await Stage.get(id=rating.stage_id).select_related("definition")
    if stage.status is not StageStatus.COMPLETED:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"the service is not completed: stage {stage.definition.code} is "
            f"{stage.status.value}; rate it once it is completed",
            field="code",
        )
    return stage.project_id, {"stage": stage.definition.code}


async def close_follow_up(*, viewer: Viewer, rating_id: int, note: str, now: datetime) -> Rating:
    """A supervisor records how a bad rating was followed up, and closes it."""
    require_role(viewer, Role.SUPERVISOR)
    note = note.strip()
    if not note:
        raise invalid("say how the rating was followed up (回访及整改情况)", field="note")
    if len(note) > MAX_NOTE:
        raise invalid(
            f"the note has {len(note)} characters; shorten it to {MAX_NOTE}", field="note"
        )
    rating = await rating_query(viewer).filter(id=rating_id).first()
    if rating is None:
        rating = await setup_rating_query(viewer).filter(id=rating_id).first()
    if rating is None:
        raise not_found("rating", rating_id, field="ratingId")
    if rating.follow_up_due is None:
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"rating {rating_id} has no follow-up: only a rating of {BAD_SCORE} or less opens one",
            field="ratingId",
        )
    if rating.setup_id is not None:
        project_id = (await CompanySetup.get(id=rating.setup_id)).project_id
    else:
        project_id = (await Stage.get(id=rating.stage_id)).project_id
    async with in_transaction():
        locked = await Rating.select_for_update().get(id=rating.id)
        if locked.follow_up_done_at is not None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"the follow-up of rating {rating_id} was already closed; nothing to do",
                field="ratingId",
            )
        locked.follow_up_done_at = now
        locked.follow_up_note = note
        await locked.save(update_fields=["follow_up_done_at", "follow_up_note"])
        await audit.record(
            actor_id=viewer.user_id,
            action="rating.close_follow_up",
            entity_type="rating",
            entity_id=locked.id,
            project_id=project_id,
            before={"followUpDue": rating.follow_up_due.isoformat(), "followUpOpen": True},
            after={"followUpOpen": False, "note": note},
        )
    return locked


def _visible_projects(viewer: Viewer) -> Subquery:
    return Subquery(Project.filter(project_scope(viewer)).values("id"))


def rating_query(viewer: Viewer) -> QuerySet[Rating]:
    """The ratings a supervisor may see: those of projects in the supervisor's region."""
    require_role(viewer, Role.SUPERVISOR)
    return Rating.filter(stage__project_id__in=_visible_projects(viewer))


def setup_rating_query(viewer: Viewer) -> QuerySet[Rating]:
    """The company setups' ratings a supervisor may see: those of setups in the region."""
    require_role(viewer, Role.SUPERVISOR)
    return Rating.filter(
        setup_id__in=Subquery(CompanySetup.filter(setup_scope(viewer)).values("id"))
    )


@dataclass(frozen=True)
class RatingSummary:
    """All the ratings of a query, counted in the database: codes sent, rated, how many of
    each score, and the follow-ups of the bad ones (open, of them overdue, closed)."""

    sent: int
    by_score: dict[int, int]  # every score from MIN_SCORE to MAX_SCORE, 0 when none
    follow_ups_open: int
    follow_ups_overdue: int
    follow_ups_closed: int

    @property
    def rated(self) -> int:
        return sum(self.by_score.values())

    @property
    def bad(self) -> int:
        return sum(n for score, n in self.by_score.items() if score <= BAD_SCORE)

    @property
    def average(self) -> float | None:
        """The mean score of the rated ones (two decimals); None before the first rating."""
        if not self.rated:
            return None
        return round(sum(s * n for s, n in self.by_score.items()) / self.rated, 2)


async def summarize_ratings(query: QuerySet[Rating], *, today: date) -> RatingSummary:
    """:class:`RatingSummary` of every rating ``query`` matches: a GROUP BY score and three
    counts, never the rows themselves."""
    grouped = await query.annotate(n=Count("id")).group_by("score").values_list("score", "n")
    by_score = dict.fromkeys(range(MIN_SCORE, MAX_SCORE + 1), 0)
    sent = 0
    for score, n in grouped:
        sent += int(n)
        if score is not None:
            by_score[int(score)] = by_score.get(int(score), 0) + int(n)
    open_follow_ups = query.filter(follow_up_due__isnull=False, follow_up_done_at__isnull=True)
    return RatingSummary(
        sent=sent,
        by_score=by_score,
        follow_ups_open=await open_follow_ups.count(),
        follow_ups_overdue=await open_follow_ups.filter(follow_up_due__lt=today).count(),
        follow_ups_closed=await query.filter(follow_up_done_at__isnull=False).count(),
    )


async def setup_rating_summary(*, viewer: Viewer, today: date) -> RatingSummary:
    """Every company-setup rating a supervisor may see (:func:`setup_rating_query`), summed up."""
    return await summarize_ratings(setup_rating_query(viewer), today=today)


def notification_query(
    viewer: Viewer,
    *,
    status: NotificationStatus | None = None,
    project_code: str | None = None,
) -> QuerySet[Notification]:
    """The outbox as a supervisor may see it; messages of no project only city-wide."""
    require_role(viewer, Role.SUPERVISOR)
    scope = Q(project_id__in=_visible_projects(viewer))
    if viewer.region_ids is None:
        scope |= Q(project_id__isnull=True)
    query = Notification.filter(scope)
    if status is not None:
        query = query.filter(status=status)
    if project_code:
        query = query.filter(project__code=project_code.strip())
    return query


def applicant_ratings(viewer: Viewer) -> QuerySet[Rating]:
    """An applicant's own ratings: those of completed stages of their enterprise's projects
    (rated or still waiting), for rating in the portal instead of by the SMS code."""
    require_role(viewer, Role.APPLICANT)
    return Rating.filter(stage__project_id__in=_visible_projects(viewer))


async def rate_own_service(
    *, viewer: Viewer, rating_id: int, score: int, comment: str, now: datetime
) -> Rating:
    """The logged-in applicant rates one of their own completed services (same rules as by
    code: once, 1 to 5, a bad rating opens a follow-up)."""
    rating = await applicant_ratings(viewer).filter(id=rating_id).first()
    if rating is None:
        raise not_found("rating", rating_id, field="ratingId")
    return await rate_service(code=rating.code, score=score, comment=comment, now=now)
