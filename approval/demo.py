"""Demo data: people, enterprises and projects of 德州市, made through the service functions.

Everything goes through the same functions the API calls, so the audit trail, project codes,
deadlines and stage states are exactly what real use would produce. Nothing is random: the
same ``now`` gives the same data. The catalog and the holiday calendar must be loaded first
(``onewindow load-catalog``).

Every demo user has the password ``onewindow-demo``:

=================  ==========================  ===========================================
username           role                        notes
=================  ==========================  ===========================================
``window``         window_clerk (综合受理窗口)    the city center's window, sees every project
``window-jkq``     window_clerk                 经开区 window, sees 德州经济技术开发区 only
``<department>``   reviewer (审批人员)           one per department that owns an item, named
                                               by its catalog code: ``fgw``, ``zrzy``,
                                               ``zjj``, ``sthj``, ``yjgl``, ``slj``, ``sw``,
                                               ``rfb``, ``qxj``, ``cgj``, ``zajz``, ``rsj``,
                                               ``zwzx``, ``xfjy``, ``cjdag``, ``scjg``,
                                               ``dcq-xzsp``
``inspector``      inspector (踏勘/验收人员)      住建局
``agent``          agent (代办员)                the agent of several projects
``supervisor``     supervisor (中心管理办)        sees every project
``applicant``      applicant (申请人)            德州华信新材料科技有限公司
=================  ==========================  ===========================================

Projects (twelve) stand in every state a stage can be in: just registered, collecting
materials, stage 1 in review (one with a 容缺 commitment, one long overdue), partly decided,
waiting for a supplement (补正), stage 1 approved, stage 2 in review, and stage 2 approved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from tortoise.transactions import in_transaction

from approval.company.intake import SetupApplication, accept_setup, flow_plan
from approval.company.issuing import issue_setup
from approval.company.review import decide_setup_task, request_setup_supplement
from approval.core.access import Viewer
from approval.core.auth import create_user, viewer_of
from approval.core.calendar import calendar_years
from approval.core.codes import credit_code_with_check
from approval.core.dates import CHINA, local_day
from approval.core.errors import DomainError, ErrorCode
from approval.fieldwork.inspections import assign_inspectors, file_conclusion
from approval.projects.materials import MaterialFile, review_material, submit_material
from approval.projects.projects import ProjectApplication, create_project
from approval.projects.stages import Commitment, stage_readiness
from approval.projects.stages import accept_stage as accept_stage_service
from approval.projects.tasks import decide_task, request_supplement
from storage.enums import Conclusion, Decision, MaterialStatus, ProjectType, Role, TaskStatus
from storage.models import (
    AuditEvent,
    CalendarYear,
    Department,
    Enterprise,
    Inspection,
    ItemMaterial,
    Material,
    MaterialType,
    Project,
    ServiceItem,
    SetupPermit,
    SetupRules,
    SetupTask,
    Stage,
    StageDefinition,
    Task,
    User,
)

DEMO_PASSWORD = "onewindow-demo"
Progress = Callable[[str], None]

STAGE_CODES = ("project_approval", "engineering_permit")


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    display_name: str
    department: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class DemoEnterprise:
    first17: str
    name: str
    contact_name: str
    contact_phone: str

    @property
    def credit_code(self) -> str:
        return credit_code_with_check(self.first17)


class Scenario(StrEnum):
    """How far a demo project has gone."""

    NEW = "registered, nothing submitted"
    COLLECTING = "collecting stage 1 materials"
    IN_REVIEW = "stage 1 in review"
    COMMITMENT = "stage 1 in review with a 容缺 commitment"
    OVERDUE = "stage 1 in review, past its deadline"
    PARTLY_DECIDED = "stage 1 in review, half the departments decided"
    SUPPLEMENT = "stage 1 waiting for a supplement (补正)"
    STAGE1_APPROVED = "stage 1 approved"
    STAGE2_IN_REVIEW = "stage 1 approved, stage 2 in review"
    STAGE2_APPROVED = "stages 1 and 2 approved"


@dataclass(frozen=True)
class DemoProject:
    name: str
    enterprise: int  # index into ENTERPRISES
    region: str
    project_type: ProjectType
    industry: str
    land_m2: str
    floor_m2: str
    investment_10k: str
    address: str
    scenario: Scenario
    days_ago: int
    with_agent: bool = False


ENTERPRISES = (
    DemoEnterprise("91371400MA3C4K7L2", "德州华信新材料科技有限公司", "刘建华", "13905341234"),
    DemoEnterprise("91371400MA3D8P5X6", "山东德润智能装备股份有限公司", "陈德润", "13805346688"),
    DemoEnterprise("91371400MA3F2N9R4", "德州恒泰置业有限公司", "孙海燕", "15905347766"),
    DemoEnterprise(
        "913714001678912K3", "德州市城市建设投资发展集团有限公司", "赵国强", "0534-2688001"
    ),
)

_FILING, _VERIFY, _APPROVE = ProjectType.FILING, ProjectType.VERIFICATION, ProjectType.APPROVAL

PROJECTS = (
    DemoProject(
        "年产5万吨高性能复合材料项目", 0, "371471-p01", _FILING, "30",
        "86000", "52000", "68000", "德州经济技术开发区东风东路以南、崇德五大道以东",
        Scenario.STAGE2_APPROVED, 60, with_agent=True,
    ),
    DemoProject(
        "数控机床智能化生产线扩建项目", 1, "371471", _VERIFY, "34",
        "45000", "38000", "42000", "德州经济技术开发区晶华路888号",
        Scenario.STAGE2_IN_REVIEW, 50, with_agent=True,
    ),
    DemoProject(
        "运河名苑住宅小区项目", 2, "371402", _FILING, "70",
        "62000", "158000", "96000", "德城区新湖南大道与运河街交汇处西北角",
        Scenario.STAGE1_APPROVED, 40,
    ),
    DemoProject(
        "德州市第三人民医院门诊综合楼项目", 3, "371402", _APPROVE, "84",
        "21000", "46000", "35000", "德城区天衢东路1169号院内",
        Scenario.SUPPLEMENT, 30,
    ),
    DemoProject(
        "运河医养健康中心项目", 3, "371472-p01", _APPROVE, "84",
        "33000", "41000", "28000", "德州运河经济开发区康宁路以北",
        Scenario.COMMITMENT, 12, with_agent=True,
    ),
    DemoProject(
        "新材料研发中心及中试基地项目", 0, "371403-p01", _FILING, "73",
        "28000", "19000", "15000", "陵城经济开发区海棠路以东",
        Scenario.IN_REVIEW, 8,
    ),
    DemoProject(
        "齐河智能装备配套产业园项目", 1, "371425", _VERIFY, "34",
        "120000", "85000", "120000", "齐河县经济开发区齐鲁大道北首",
        Scenario.PARTLY_DECIDED, 15, with_agent=True,
    ),
    DemoProject(
        "禹城恒泰广场商业综合体项目", 2, "371482", _FILING, "70",
        "38000", "126000", "88000", "禹城市汉槐街与行政街交汇处东南角",
        Scenario.OVERDUE, 45,
    ),
    DemoProject(
        "德州市实验中学新校区建设项目", 3, "371403", _APPROVE, "83",
        "140000", "98000", "76000", "陵城区安德街以南、迎宾路以西",
        Scenario.IN_REVIEW, 5,
    ),
    DemoProject(
        "乐陵康复医院建设项目", 2, "371481", _FILING, "84",
        "26000", "32000", "22000", "乐陵市枣乡街北首",
        Scenario.COLLECTING, 3,
    ),
    DemoProject(
        "平原县智慧仓储物流中心项目", 1, "371426", _FILING, "59",
        "66000", "48000", "31000", "平原县经济开发区龙门大道东侧",
        Scenario.NEW, 2,
    ),
    DemoProject(
        "夏津县20兆瓦分布式光伏发电项目", 0, "371427", _VERIFY, "44",
        "150000", "2000", "9000", "夏津县经济开发区工业园屋顶",
        Scenario.NEW, 1,
    ),
)  # fmt: skip

FIXED_USERS = (
    DemoUser("window", Role.WINDOW_CLERK, "王静"),
    DemoUser("window-jkq", Role.WINDOW_CLERK, "高明", region="371471"),
    DemoUser("inspector", Role.INSPECTOR, "马骏", department="zjj"),
    DemoUser("agent", Role.AGENT, "李敏"),
    DemoUser("supervisor", Role.SUPERVISOR, "张强"),
)
APPLICANT = DemoUser("applicant", Role.APPLICANT, "刘建华")


class SetupState(StrEnum):
    IN_REVIEW = "in_review"  # accepted today or so, every department still working
    SITE_CHECKED = "site_checked"  # the site checks are done, no decision yet
    READY = "ready"  # every department approved: waiting for 统一发证
    ISSUED = "issued"  # the certificates were issued together
    REFUSED = "refused"  # one department refused
    SUPPLEMENT = "supplement"  # 补正: 食药监局 asked for the layout again, its permit waits
    # 待补正: 食药监局 returned the layout and decided 需补正, the others approved, so the
    # fan-in waits for the applicant; the window's 重新受理 takes the corrected layout.
    SUPPLEMENT_REQUIRED = "supplement_required"


@dataclass(frozen=True)
class DemoSetup:
    company_name: str
    business_type: str
    contact_name: str
    contact_phone: str
    days_ago: int
    state: SetupState


_S = SetupState

SETUPS = (
    DemoSetup("德州市老街餐饮有限公司", "restaurant", "赵敏", "13805340101", 1, _S.IN_REVIEW),
    DemoSetup("德州市康宁大药房有限公司", "pharmacy", "钱伟", "13805340102", 2, _S.SITE_CHECKED),
    DemoSetup("德州市惠民超市有限公司", "supermarket", "孙丽", "13805340103", 4, _S.READY),
    DemoSetup("德州市书香阁图书有限公司", "bookstore", "李娜", "13805340104", 6, _S.ISSUED),
    DemoSetup("德州市速达物流有限公司", "freight", "周军", "13805340105", 5, _S.REFUSED),
    DemoSetup("德州德美精密制造公司", "foreign-factory", "吴强", "13805340106", 3, _S.IN_REVIEW),
    DemoSetup("德州市一品小吃有限公司", "snack-bar", "郑芳", "13805340107", 2, _S.SUPPLEMENT),
    DemoSetup("德州市邻里便利店有限公司", "convenience-store", "冯磊", "13805340108", 4,
              _S.SUPPLEMENT_REQUIRED),
)  # fmt: skip

OPINIONS = {
    Decision.APPROVED: "材料齐全，符合要求，同意。",
    Decision.APPROVED_WITH_CONDITIONS: "原则同意；开工前须补充提交施工期环境监测方案。",
}


SUPPLEMENT_OPINION = "平面布局图未体现生熟分区, 不符合食品经营场所要求, 请补正后重新受理。"


@dataclass
class DemoReport:
    users: list[DemoUser] = field(default_factory=list)
    password: str = DEMO_PASSWORD
    enterprises: int = 0
    projects: list[tuple[str, str, Scenario]] = field(default_factory=list)  # code, name, state
    materials: int = 0
    stages_accepted: int = 0
    commitments: int = 0
    tasks_decided: int = 0
    supplements: int = 0
    audit_events: int = 0
    setups: list[tuple[str, str, SetupState]] = field(default_factory=list)  # code, name, state

    def summary(self) -> str:
        return "\n".join(
            [
                f"users: {len(self.users)} (password {self.password!r})",
                f"enterprises: {self.enterprises}",
                f"projects: {len(self.projects)}",
                f"materials submitted: {self.materials}",
                f"stages accepted: {self.stages_accepted} ({self.commitments} with 容缺)",
                f"tasks decided: {self.tasks_decided}",
                f"supplements requested: {self.supplements}",
                f"company setups: {len(self.setups)}",
                f"audit events: {self.audit_events}",
            ]
        )


@dataclass
class _Seeder:
    now: datetime
    report: DemoReport
    viewers: dict[str, Viewer] = field(default_factory=dict)

    # --- people ------------------------------------------------------------------------

    async def user(self, spec: DemoUser, *, enterprise_id: int | None = None) -> None:
        user = await create_user(
            username=spec.username,
            password=DEMO_PASSWORD,
            display_name=spec.display_name,
            role=spec.role,
            department_code=spec.department,
            region_code=spec.region,
            enterprise_id=enterprise_id,
        )
        self.viewers[spec.username] = await viewer_of(user)
        self.report.users.append(spec)

    async def staff(self) -> None:
        for spec in FIXED_USERS:
            await self.user(spec)
        item_departments = set(
            await ServiceItem.filter(active=True).values_list("department_id", flat=True)
        )
        item_departments |= set(
            await SetupPermit.filter(active=True).values_list("department_id", flat=True)
        )
        for department in await Department.filter(id__in=item_departments).order_by("id"):
            await self.user(
                DemoUser(
                    department.code,
                    Role.REVIEWER,
                    f"{department.short_name}审批员",
                    department=department.code,
                )
            )
        # An inspector per department whose setup permits need a site check (现场踏勘), e.g.
        # shiyao-inspector: the field app lists the setups' checks assigned to them.
        checking = set(
            await SetupPermit.filter(active=True, site_check_id__isnull=False).values_list(
                "department_id", flat=True
            )
        )
        for department in await Department.filter(id__in=checking).order_by("id"):
            await self.user(
                DemoUser(
                    f"{department.code}-inspector",
                    Role.INSPECTOR,
                    f"{department.short_name}检查员",
                    department=department.code,
                )
            )

    # --- projects ----------------------------------------------------------------------

    async def project(self, spec: DemoProject) -> Project:
        enterprise = ENTERPRISES[spec.enterprise]
        form = ProjectApplication(
            name=spec.name,
            credit_code=enterprise.credit_code,
            enterprise_name=enterprise.name,
            region_code=spec.region,
            project_type=spec.project_type,
            industry_code=spec.industry,
            land_area_m2=Decimal(spec.land_m2),
            floor_area_m2=Decimal(spec.floor_m2),
            investment_10k_yuan=Decimal(spec.investment_10k),
            address=spec.address,
            agent_username="agent" if spec.with_agent else None,
            contact_name=enterprise.contact_name,
            contact_phone=enterprise.contact_phone,
        )
        at = self.now - timedelta(days=spec.days_ago)
        project = await create_project(viewer=self.viewers["window"], form=form, now=at)
        self.report.projects.append((project.code, project.name, spec.scenario))
        return project

    async def stage(self, project: Project, code: str) -> Stage:
        return await Stage.get(project_id=project.id, definition__code=code)

    async def submit(self, project: Project, types: list[MaterialType], at: datetime) -> None:
        window = self.viewers["window"]
        for material_type in types:
            digest = hashlib.sha256(f"{project.code}/{material_type.code}".encode()).hexdigest()
            await submit_material(
                viewer=window,
                project_id=project.id,
                material_type_code=material_type.code,
                file=MaterialFile(
                    file_name=f"{material_type.name}.pdf",
                    size_bytes=200_000 + 1_000 * len(material_type.code),
                    sha256=digest,
                ),
                now=at,
            )
            self.report.materials += 1

    async def accept_submitted(self, project: Project, at: datetime) -> None:
        """The window checks every submitted material and accepts it."""
        for material in await Material.filter(
            project_id=project.id, status=MaterialStatus.SUBMITTED
        ):
            await review_material(
                viewer=self.viewers["window"],
                material_id=material.id,
                accept=True,
                reason="",
                now=at,
            )

    async def accept(
        self, project: Project, code: str, at: datetime, *, signatory: str | None = None
    ) -> Stage:
        """Deliver what the stage lacks, then accept it.

        With a ``signatory``, one missing non-core material is left under a 容缺 commitment.
        """
        readiness = await stage_readiness(project=project, stage=await self.stage(project, code))
        commitments: list[Commitment] = []
        missing_non_core = list(readiness.missing_non_core)
        if signatory is not None and missing_non_core:
            promised = missing_non_core.pop(0)
            commitments.append(
                Commitment(
                    material_type_code=promised.code,
                    due=local_day(at) + timedelta(days=7),
                    signed_by=signatory,
                )
            )
        await self.submit(project, [*readiness.missing_core, *missing_non_core], at)
        await self.accept_submitted(project, at + timedelta(minutes=20))
        stage = await accept_stage_service(
            viewer=self.viewers["window"],
            project_id=project.id,
            stage_code=code,
            now=at + timedelta(minutes=30),
            commitments=commitments,
        )
        self.report.stages_accepted += 1
        self.report.commitments += bool(commitments)
        return stage

    async def open_tasks(self, stage: Stage) -> list[Task]:
        return (
            await Task.filter(stage_id=stage.id, round=stage.round, status=TaskStatus.PENDING)
            .select_related("department")
            .order_by("id")
        )

    async def decide(self, tasks: list[Task], at: datetime, *, conditional: int = -1) -> None:
        """Every task approved, the one at index ``conditional`` with conditions."""
        for index, task in enumerate(tasks):
            decision = (
                Decision.APPROVED_WITH_CONDITIONS if index == conditional else Decision.APPROVED
            )
            await decide_task(
                viewer=self.viewers[task.department.code],
                task_id=task.id,
                decision=decision,
                opinion=OPINIONS[decision],
                now=at + timedelta(hours=index),
            )
            self.report.tasks_decided += 1

    async def supplement(self, task: Task, at: datetime) -> None:
        link = (
            await ItemMaterial.filter(item_id=task.item_id, core=True)
            .exclude(material_type__code="project_application_form")
            .select_related("material_type")
            .order_by("id")
            .first()
        )
        material_type = link.material_type if link is not None else None
        what = material_type.name if material_type is not None else "申请材料"
        await request_supplement(
            viewer=self.viewers[task.department.code],
            task_id=task.id,
            reason=f"{what}内容不完整，数据依据不足，请按审查意见补正后重新提交。",
            material_type_code=material_type.code if material_type is not None else None,
            now=at,
        )
        self.report.supplements += 1

    # --- scenarios -----------------------------------------------------------------------

    async def play(self, spec: DemoProject) -> None:
        project = await self.project(spec)
        start = self.now - timedelta(days=spec.days_ago) + timedelta(hours=1)
        scenario = spec.scenario
        if scenario is Scenario.NEW:
            return
        if scenario is Scenario.COLLECTING:
            stage = await self.stage(project, STAGE_CODES[0])
            readiness = await stage_readiness(project=project, stage=stage)
            half = readiness.missing_core[: len(readiness.missing_core) // 2]
            await self.submit(project, half, start)
            return
        contact = ENTERPRISES[spec.enterprise].contact_name
        signatory = contact if scenario is Scenario.COMMITMENT else None
        first = await self.accept(project, STAGE_CODES[0], start, signatory=signatory)
        decided_at = start + timedelta(days=2)
        tasks = await self.open_tasks(first)
        if scenario in (Scenario.IN_REVIEW, Scenario.COMMITMENT, Scenario.OVERDUE):
            return
        if scenario is Scenario.PARTLY_DECIDED:
            await self.decide(tasks[: len(tasks) // 2], decided_at)
            return
        if scenario is Scenario.SUPPLEMENT:
            await self.decide(tasks[:2], decided_at)
            await self.supplement(tasks[2], decided_at + timedelta(hours=4))
            return
        await self.decide(tasks, decided_at, conditional=1)
        if scenario is Scenario.STAGE1_APPROVED:
            return
        second = await self.accept(project, STAGE_CODES[1], start + timedelta(days=5))
        if scenario is Scenario.STAGE2_APPROVED:
            await self.decide(await self.open_tasks(second), start + timedelta(days=9))

    # --- company setups (企业设立) --------------------------------------------------------

    async def site_check(self, task: SetupTask, start: datetime, *, done: bool) -> None:
        """The permit department's reviewer assigns its inspector to the setup's site check;
        when ``done``, the inspector signs a passing conclusion the next day (as the field
        app's sync would)."""
        inspection = await Inspection.filter(setup_task_id=task.id).order_by("-id").first()
        assert inspection is not None
        inspector = f"{task.department.code}-inspector"
        await assign_inspectors(
            viewer=self.viewers[task.department.code],
            inspection_id=inspection.id,
            usernames=[inspector],
            now=start + timedelta(minutes=30),
        )
        if done:
            await file_conclusion(
                viewer=self.viewers[inspector],
                inspection_id=inspection.id,
                result=Conclusion.PASS,
                note="现场核查合格",
                now=start + timedelta(days=1),
            )

    async def setup(self, spec: DemoSetup, project_code: str | None) -> str:
        """Accept a setup with every material it needs, then play its state."""
        plan = await flow_plan(business_type=spec.business_type)
        start = self.now - timedelta(days=spec.days_ago) + timedelta(hours=1)
        setup = await accept_setup(
            viewer=self.viewers["window"],
            form=SetupApplication(
                company_name=spec.company_name,
                business_type=spec.business_type,
                region_code="371402",
                contact_name=spec.contact_name,
                contact_phone=spec.contact_phone,
                materials=list(plan.material_types()),
                project_code=project_code if plan.flow.starts_project else None,
            ),
            now=start,
        )
        at = start + timedelta(days=1)
        tasks = await SetupTask.filter(setup_id=setup.id).select_related("department")
        for task in tasks:
            if task.site_check_due is not None:
                await self.site_check(task, start, done=spec.state is not SetupState.IN_REVIEW)
        if spec.state is SetupState.IN_REVIEW:
            return setup.code
        for task in tasks:
            reviewer = self.viewers[task.department.code]
            if spec.state is SetupState.SITE_CHECKED:
                continue
            asks = spec.state in (SetupState.SUPPLEMENT, SetupState.SUPPLEMENT_REQUIRED)
            if asks and task.department.code == "shiyao":
                await request_setup_supplement(
                    viewer=reviewer,
                    task_id=task.id,
                    reason="经营场所平面布局图未标明加工操作区与就餐区, 请补正后重新提交。",
                    material_type_code="premises_layout",
                    now=at,
                )
                if spec.state is SetupState.SUPPLEMENT:
                    continue
                decision, opinion = Decision.SUPPLEMENT_REQUIRED, SUPPLEMENT_OPINION
            elif spec.state is SetupState.REFUSED and task is tasks[-1]:
                decision, opinion = Decision.REJECTED, "经营场所不符合行业准入条件。"
            else:
                decision, opinion = Decision.APPROVED, OPINIONS[Decision.APPROVED]
            await decide_setup_task(
                viewer=reviewer, task_id=task.id, decision=decision, opinion=opinion, now=at
            )
        if spec.state is SetupState.ISSUED:
            await issue_setup(viewer=self.viewers["window"], code=setup.code, now=at)
        return setup.code


async def _check_ready() -> None:
    if await StageDefinition.all().count() != 4 or not await CalendarYear.exists():
        raise DomainError(
            ErrorCode.INVALID_STATE,
            "the catalog or the holiday calendar is not loaded; run `onewindow load-catalog` first",
        )
    taken = [
        name
        for name in await User.filter(
            username__in=[u.username for u in (*FIXED_USERS, APPLICANT)]
        ).values_list("username", flat=True)
    ]
    if taken:
        raise DomainError(
            ErrorCode.CONFLICT,
            f"demo users already exist ({', '.join(sorted(map(str, taken)))}); the demo was "
            "seeded before: use a fresh database, or `seed-demo --if-empty`",
        )


async def demo_date(now: datetime) -> datetime:
    """``now``, or an earlier day whose deadlines (up to ~2 months ahead) the calendar knows.

    Deadlines are never guessed beyond the official calendar, so near a year end whose next
    year is not loaded yet the demo is dated back into the known calendar instead.
    """
    known = {year for year, _ in await calendar_years()}
    if not known:
        return now
    local = now.astimezone(CHINA)
    ahead = (local + timedelta(days=70)).year
    if local.year in known and ahead in known:
        return now
    earlier = [year for year in known if year <= local.year]
    if not earlier:
        return now
    latest = datetime(max(earlier), 10, 15, 10, 0, tzinfo=CHINA)
    return min(now, latest.astimezone(now.tzinfo))


async def seed_demo(*, now: datetime, progress: Progress | None = None) -> DemoReport:
    """Create the demo users, enterprises and projects as of ``now`` (all-or-nothing)."""

    def say(line: str) -> None:
        if progress is not None:
            progress(line)

    await _check_ready()
    report = DemoReport()
    as_of = await demo_date(now)
    if as_of != now:
        say(
            f"the holiday calendar ends before the demo's deadlines would: the demo is dated "
            f"{as_of.date()}; load the next year with `onewindow load-holidays FILE` to date "
            "it today"
        )
    seeder = _Seeder(now=as_of, report=report)
    events_before = await AuditEvent.all().count()
    enterprises_before = await Enterprise.all().count()
    async with in_transaction():
        await seeder.staff()
        say(f"staff users: {len(report.users)} created")
        for spec in PROJECTS:
            await seeder.play(spec)
            code, name, scenario = report.projects[-1]
            say(f"project {code} {name}: {scenario.value}")
        if await SetupRules.exists():
            linked = report.projects[0][0] if report.projects else None
            for setup_spec in SETUPS:
                code = await seeder.setup(setup_spec, linked)
                report.setups.append((code, setup_spec.company_name, setup_spec.state))
                say(f"company setup {code} {setup_spec.company_name}: {setup_spec.state.value}")
        else:
            say("company setups: skipped, the company catalog is not loaded")
        applicant_enterprise = await Enterprise.get(credit_code=ENTERPRISES[0].credit_code)
        await seeder.user(APPLICANT, enterprise_id=applicant_enterprise.id)
        say(f"user {APPLICANT.username}: applicant of {applicant_enterprise.name}")
    report.enterprises = await Enterprise.all().count() - enterprises_before
    report.audit_events = await AuditEvent.all().count() - events_before
    return report
