"""Admin pages: the hosts (capacity, use, cache; enable and disable) and the groups (fair
share, quotas, members, and core-hours per group over time as a chart and a table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from gridvm.api.deps import services
from gridvm.api.portal.charts import Series, number, stacked_bars
from gridvm.api.portal.rendering import error_text, redirect, render
from gridvm.api.portal.session import PortalSession, checked_form
from gridvm.common.errors import GridvmError, InvalidInput
from gridvm.schemas.hosts import HostState
from gridvm.schemas.usage import Bucket, UsageHistory
from gridvm.services.web_sessions import OpenSession

router = APIRouter()

HOSTS = "/ui/admin/hosts"
RANGES = (1, 7, 30, 90)


def _admin(session: OpenSession) -> None:
    session.principal.require_admin()


def _hosts_page(
    request: Request, session: OpenSession, *, status_code: int = 200, error: str | None = None
) -> Any:
    svc = services(request)
    hosts = svc.hosts.list_hosts(session.principal)
    digests = {d for h in hosts for d in h.cached_images}
    names = svc.hosts.image_names(session.principal, digests) if digests else {}
    return render(
        request,
        "hosts.html",
        session,
        status_code=status_code,
        active="hosts",
        hosts=hosts,
        image_names=names,
        error=error,
    )


@router.get("/admin/hosts")
def hosts_page(request: Request, session: PortalSession) -> Any:
    _admin(session)
    return _hosts_page(request, session)


async def _set_state(request: Request, session: OpenSession, name: str, state: HostState) -> Any:
    _admin(session)
    await checked_form(request, session)
    try:
        services(request).hosts.set_state(session.principal, name, state)
    except GridvmError as exc:
        return _hosts_page(request, session, status_code=exc.http_status, error=error_text(exc))
    if state is HostState.disabled:
        return redirect(HOSTS, f"Host {name} is disabled: it keeps its VMs and gets no new ones.")
    return redirect(HOSTS, f"Host {name} is enabled: it takes new VMs again.")


@router.post("/admin/hosts/{name}/disable")
async def disable_host(request: Request, session: PortalSession, name: str) -> Any:
    return await _set_state(request, session, name, HostState.disabled)


@router.post("/admin/hosts/{name}/enable")
async def enable_host(request: Request, session: PortalSession, name: str) -> Any:
    return await _set_state(request, session, name, HostState.enabled)


def bucket_label(start: datetime, bucket: Bucket) -> str:
    """A short axis label: the day (at midnight, and for day buckets) or the hour."""
    return start.strftime("%H:%M" if bucket is Bucket.hour and start.hour else "%b %d")


def usage_chart(history: UsageHistory, all_groups: list[str]) -> Any:
    """The usage history as a stacked bar chart (inline SVG); each group's colour comes
    from its place in ``all_groups``, so it keeps it whatever the range shown."""
    places = {name: i for i, name in enumerate(sorted(all_groups))}
    unit = "hour" if history.bucket is Bucket.hour else "day"
    return stacked_bars(
        chart_id="usage-chart",
        title=f"Core-hours per group per {unit}, last {history.days} days",
        labels=[bucket_label(s, history.bucket) for s in history.starts],
        series=[
            Series(s.group, s.core_hours, places.get(s.group, len(places))) for s in history.series
        ],
        unit="core-hours",
    )


@router.get("/admin/groups")
def groups_page(request: Request, session: PortalSession, days: str = "7") -> Any:
    _admin(session)
    if not days.strip().isdigit():
        raise InvalidInput(f"days must be a whole number, not {days!r}", hint="try days=7")
    svc = services(request)
    who = session.principal
    history = svc.usage.history(who, int(days))
    groups = {g.path or g.name: g for g in svc.identity.list_groups(who)}
    quotas = {q.name: q for q in svc.quotas.show(who) if q.kind.value == "group"}
    tree = svc.fairshare.tree()
    return render(
        request,
        "groups.html",
        session,
        active="groups",
        tree=tree,
        groups=groups,
        quotas=quotas,
        history=history,
        chart=usage_chart(history, [row.group for row in tree.groups]),
        labels=[
            s.strftime("%Y-%m-%d %H:00" if history.bucket is Bucket.hour else "%Y-%m-%d")
            for s in history.starts
        ],
        days=history.days,
        figure=number,
        ranges=RANGES,
    )
