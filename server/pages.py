"""Plain HTTP pages next to GraphQL: the printable joint notice (联合告知书) of a project and
the ledger (台账) download. Both authenticate like the API (``Authorization: Bearer <token>``)
or, so that a link can be opened or printed straight from a browser, with ``?ticket=`` from the
``pageTicket`` mutation: valid a minute, for that page alone. A bearer token is never taken
from a URL (access logs, browser histories and Referer headers would keep it)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from approval.core import auth
from approval.core.access import Viewer
from approval.core.errors import DomainError, ErrorCode
from approval.oversight import reports
from approval.oversight.notice import JointNotice, project_notice
from approval.oversight.setup_figures import setup_ledger_rows

log = logging.getLogger("onewindow.pages")

Clock = Callable[[], datetime]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # a ?ticket= link must not leak through the Referer
    "X-Content-Type-Options": "nosniff",
}


async def _viewer(request: Request, clock: Clock) -> Viewer | Response:
    """The viewer of the bearer header or of ``?ticket=`` (for this page), or the 401
    response saying why not."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if header and (scheme.lower() != "bearer" or not token.strip()):
        return _refused(401, "认证失败", auth.malformed_header().message)
    ticket = request.query_params.get("ticket", "").strip()
    try:
        if token.strip():
            return await auth.authenticate(token=token.strip(), now=clock())
        if ticket:
            return await auth.redeem_page_ticket(ticket=ticket, path=request.url.path, now=clock())
    except DomainError as error:
        return _refused(401, "认证失败", error.message)
    return _refused(
        401,
        "请先登录",
        "no token was sent; send 'Authorization: Bearer <token>', or open the link with a "
        "?ticket= from the pageTicket mutation (a bearer token is never read from a URL)",
    )


def _refused(status: int, title: str, detail: str) -> HTMLResponse:
    body = (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
        f"<p>{escape(detail)}</p></body></html>"
    )
    headers = dict(PRIVATE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="onewindow"'
    return HTMLResponse(body, status_code=status, headers=headers)


# --- the joint notice ------------------------------------------------------------------------

STYLE = """
body { font-family: "Source Han Serif SC", "Noto Serif CJK SC", "SimSun", serif;
       margin: 2em auto; max-width: 60em; color: #111; line-height: 1.5; }
h1 { text-align: center; font-size: 1.6em; letter-spacing: .2em; margin-bottom: .2em; }
h2 { font-size: 1.2em; border-bottom: 2px solid #333; padding-bottom: .2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.sub { text-align: center; color: #444; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; font-size: .92em; }
th, td { border: 1px solid #666; padding: .25em .45em; vertical-align: top; text-align: left; }
th { background: #eee; }
td.num { text-align: right; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.facts dt { font-weight: bold; }
.note { border-left: 4px solid #c60; padding: .3em .8em; background: #fff6ee; }
.core { font-weight: bold; }
ul.req { columns: 2; margin: .2em 0 1em; }
footer { margin-top: 2em; font-size: .85em; color: #555; }
@page { size: A4; margin: 18mm 15mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; }
  table, tr, .note { break-inside: avoid; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .noprint { display: none; }
}
"""


def _e(value: object) -> str:
    return escape(str(value))


def render_notice(notice: JointNotice, *, printed_at: datetime) -> str:
    """The joint notice as one printable HTML page (Chinese; every value escaped)."""
    out: list[str] = [
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>建设项目联合告知书 - {_e(notice.project_name or notice.region_name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>建设项目联合告知书</h1>",
        f'<p class="sub">{_e(notice.project_name or "拟建项目")}</p>',
        '<p class="noprint"><button onclick="window.print()">打印</button></p>',
        "<h2>一、项目基本情况</h2><dl class='facts'>",
    ]
    if notice.project_code:
        out.append(f"<dt>项目代码</dt><dd>{_e(notice.project_code)}</dd>")
    out += [
        f"<dt>所在区域</dt><dd>{_e(notice.region_name)}</dd>",
        f"<dt>项目类型</dt><dd>{_e(notice.project_type_label)}</dd>",
        f"<dt>用地面积</dt><dd>{_e(notice.land_area_m2)} 平方米</dd>",
        f"<dt>总投资</dt><dd>{_e(notice.investment_10k_yuan)} 万元</dd>",
        f"<dt>预计用时</dt><dd>各阶段时限合计 {notice.total_time_limit_days} 个工作日"
        f"(各阶段最长承诺时限合计 {notice.total_longest_promised_days} 个工作日)</dd>",
        "</dl>",
    ]
    for note in notice.notes:
        out.append(f'<p class="note">{_e(note)}</p>')

    out.append("<h2>二、各阶段审批事项</h2>")
    for stage in notice.stages:
        out.append(
            f"<h3>{_e(stage.order)}. {_e(stage.name)}(牵头部门: {_e(stage.lead_department_name)};"
            f"阶段时限 {stage.time_limit_days} 个工作日, 最长事项承诺 "
            f"{stage.longest_promised_days} 个工作日)</h3>"
        )
        if stage.items:
            out.append(
                "<table><thead><tr><th>审批事项</th><th>审批部门</th><th>法定时限</th>"
                "<th>承诺时限</th><th>现场踏勘</th></tr></thead><tbody>"
            )
            for item in stage.items:
                out.append(
                    f"<tr><td>{_e(item.name)}</td><td>{_e(item.department_name)}</td>"
                    f'<td class="num">{item.statutory_days} 个工作日</td>'
                    f'<td class="num">{item.promised_days} 个工作日</td>'
                    f"<td>{'需要' if item.site_check else '—'}</td></tr>"
                )
            out.append("</tbody></table>")
        else:
            out.append("<p>本阶段无须办理的事项。</p>")
        if stage.exempted:
            out.append(
                "<table><thead><tr><th>区域评估免办事项</th><th>部门</th><th>理由</th>"
                "</tr></thead><tbody>"
            )
            for exempt in stage.exempted:
                out.append(
                    f"<tr><td>{_e(exempt.name)}</td><td>{_e(exempt.department_name)}</td>"
                    f"<td>{_e(exempt.reason)}</td></tr>"
                )
            out.append("</tbody></table>")

    out.append(
        "<h2>三、申报材料清单(一套材料、一次收取, 各部门共享)</h2>"
        "<table><thead><tr><th>序号</th><th>材料名称</th><th>核心材料</th>"
        "<th>使用事项及部门</th></tr></thead><tbody>"
    )
    for number, material in enumerate(notice.materials, start=1):
        uses = "<br>".join(
            f"{_e(n.item_name)}({_e(n.department_name)}{', 核心' if n.core else ''})"
            for n in material.needs
        )
        core = '<span class="core">是</span>' if material.core else "否(可容缺承诺)"
        out.append(
            f'<tr><td class="num">{number}</td><td>{_e(material.name)}</td>'
            f"<td>{core}</td><td>{uses}</td></tr>"
        )
    out.append("</tbody></table>")

    out.append("<h2>四、设计要求(竣工联合验收将逐项核查)</h2>")
    if not notice.design_requirements:
        out.append("<p>无。</p>")
    for requirement in notice.design_requirements:
        out.append(
            f"<h3>{_e(requirement.checklist_name)}({_e(requirement.department_name)})</h3>"
            '<ul class="req">'
            + "".join(f"<li>{_e(text)}</li>" for text in requirement.requirements)
            + "</ul>"
        )
    out.append(
        f"<footer>本告知书由政务服务中心综合受理窗口出具, 一次告知, 时限以工作日计。"
        f"打印时间: {_e(printed_at.strftime('%Y-%m-%d %H:%M'))}</footer></body></html>"
    )
    return "\n".join(out)


def notice_page(clock: Clock) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        viewer = await _viewer(request, clock)
        if isinstance(viewer, Response):
            return viewer
        code = request.path_params["code"]
        try:
            notice = await project_notice(viewer=viewer, project_code=code)
        except DomainError as error:
            if error.code is ErrorCode.NOT_FOUND:
                return _refused(
                    404, "未找到项目", f"项目 {code} 不存在或您无权查看; 请核对项目代码"
                )
            return _refused(400, "无法生成联合告知书", error.message)
        return HTMLResponse(render_notice(notice, printed_at=clock()), headers=PRIVATE)

    return page


# --- the ledger ------------------------------------------------------------------------------


def ledger_download(clock: Clock) -> Callable[[Request], Awaitable[Response]]:
    async def download(request: Request) -> Response:
        viewer = await _viewer(request, clock)
        if isinstance(viewer, Response):
            return viewer
        month = request.query_params.get("month") or None
        try:
            rows = await reports.ledger_rows(viewer=viewer, now=clock(), month=month)
            setups = await setup_ledger_rows(viewer=viewer, now=clock(), month=month)
        except DomainError as error:
            status = 403 if error.code is ErrorCode.FORBIDDEN else 400
            return PlainTextResponse(error.message, status_code=status, headers=PRIVATE)
        data = await run_in_threadpool(lambda: reports.ledger_xlsx(rows, setups=setups))
        await reports.record_ledger_export(viewer=viewer, month=month, rows=len(rows))
        suffix = f"-{month}" if month else ""
        ascii_name = f"ledger{suffix}.xlsx"
        chinese_name = quote(f"台账{suffix}.xlsx")
        headers = {
            **PRIVATE,
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{chinese_name}"
            ),
        }
        log.info("ledger exported: %d rows for %s", len(rows), viewer.username)
        return Response(data, media_type=XLSX, headers=headers)

    return download


def page_routes(*, clock: Clock) -> list[BaseRoute]:
    return [
        Route("/projects/{code}/notice", notice_page(clock), methods=["GET"]),
        Route("/ledger.xlsx", ledger_download(clock), methods=["GET"]),
    ]
