"""Promotion to an alias that a person signs off, in Airflow's Required Actions.

Three steps, as the taxi DAG wires them::

    decision = compare_to_production(version)        # @task.neve: compare(session, version)
    approval = PromotionApproval(task_id="approve_promotion", ...)   # waits for a person
    promote_version(decision, approval.output)       # @task.neve: promote(session, ...)

:func:`compare` sets the candidate's metrics beside those of the version the alias points
at now and skips the rest when the candidate does not beat it. :class:`PromotionApproval`
(Airflow's human-in-the-loop operator) shows that comparison, with a link to the
candidate's page in neve's registry UI, under Required Actions and waits for Approve or
Reject. :func:`promote` moves the alias on Approve, attributed in the registry's event log
to the person who approved, and records an Asset event on the alias (a scoring DAG
scheduled on :func:`~neve.airflow.assets.alias_asset` follows it); on Reject it changes
nothing and says so.

A request nobody answers within :data:`DEFAULT_RESPONSE_TIMEOUT` (24 hours) takes its
default, Reject: production never moves without a person. ``auto_approve`` (a DAG param in
the taxi DAG) approves at once instead, for unattended runs such as ``make demo``; the
event log then names ``auto_approve`` as the approver.
"""

from __future__ import annotations

import math
import urllib.parse
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk.exceptions import AirflowSkipException
from airflow.sdk.timezone import utcnow

from neve.airflow._refs import ModelVersionRef, model_version_ref
from neve.airflow.assets import record_model_event

__all__ = [
    "APPROVE", "AUTO_APPROVER", "DEFAULT_RESPONSE_TIMEOUT", "REJECT", "PromotionApproval", "compare", "promote",
    "version_page_url",
]

APPROVE, REJECT = "Approve", "Reject"
#: How long a promotion request waits for a person before it takes its default, Reject.
DEFAULT_RESPONSE_TIMEOUT = timedelta(hours=24)
#: The approver the event log names when ``auto_approve`` is on.
AUTO_APPROVER = "auto_approve"
_TRUE = {"true", "1", "yes", "on"}


def version_page_url(model: str, version: str, compare_to: str | None = None) -> str:
    """The version's page in neve's registry UI, under Airflow's ``[api] base_url``."""
    from airflow.configuration import conf

    from neve.airflow.ui.app import PREFIX

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    quote = urllib.parse.quote
    url = f"{base}{PREFIX}/models/{quote(model, safe='')}/versions/{quote(version, safe='')}"
    return f"{url}?compare={quote(compare_to, safe='')}" if compare_to else url


def _better(candidate: float | None, current: float | None, lower_is_better: bool) -> bool:
    if candidate is None or (isinstance(candidate, float) and math.isnan(candidate)):
        return False
    if current is None:
        return True
    return candidate < current if lower_is_better else candidate > current


def compare(
    session: Any, candidate: ModelVersionRef, *, alias: str = "production", metric: str = "mse",
    lower_is_better: bool = True,
) -> dict[str, Any]:
    """The candidate beside the version ``alias`` points at, by ``metric``, with the request's
    text. Raises AirflowSkipException (skipping the approval and the promotion) when the
    candidate does not beat it; an unset alias is beaten by any candidate with the metric."""
    from neve import Registry

    candidate = ModelVersionRef.from_dict(candidate)
    model = Registry(session).get_model(candidate.model)
    current_name = model.aliases.get(alias)
    current = model_version_ref(model.version(current_name), session) if current_name else None
    new_score = candidate.metrics.get(metric)
    old_score = current.metrics.get(metric) if current is not None else None
    if current is not None and current.version == candidate.version:
        raise AirflowSkipException(f"{candidate.model} {candidate.version} already is {alias}")
    if not _better(new_score, old_score, lower_is_better):
        raise AirflowSkipException(
            f"{alias} stays {current_name}: {candidate.version} has {metric} {_fmt(new_score)}, "
            f"{current_name} has {_fmt(old_score)}"
        )
    return {
        "candidate": candidate,
        "production": current,
        "alias": alias,
        "metric": metric,
        "body": _request_body(candidate, current, alias, metric),
    }


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:,.4g}" if isinstance(value, float) else str(value)


def _request_body(candidate: ModelVersionRef, current: ModelVersionRef | None, alias: str, metric: str) -> str:
    """Markdown for the Required Action: metrics side by side and a link to the version's page."""
    was = f"replace **{current.version}**" if current is not None else "be the first version"
    lines = [
        f"**{candidate.model} {candidate.version}** would {was} as `{alias}` (better {metric}).",
        "",
        f"| metric | candidate {candidate.version} | {alias} {current.version if current else '(none)'} |",
        "|---|---|---|",
    ]
    keys = sorted(set(candidate.metrics) | set(current.metrics if current else {}))
    for key in keys:
        old = current.metrics.get(key) if current is not None else None
        name = f"**{key}**" if key == metric else key
        lines.append(f"| {name} | {_fmt(candidate.metrics.get(key))} | {_fmt(old)} |")
    link = version_page_url(candidate.model, candidate.version, current.version if current else None)
    lines += ["", f"[Open {candidate.model} {candidate.version} in neve's registry]({link})"]
    return "\n".join(lines)


class PromotionApproval(HITLOperator):
    """Approve or Reject a promotion, under Required Actions; Reject after ``response_timeout``.

    ``auto_approve`` (templated: ``"{{ params.auto_approve }}"``) approves at once, without
    asking, for unattended runs; the result then names :data:`AUTO_APPROVER`.
    """

    template_fields = (*HITLOperator.template_fields, "auto_approve")

    def __init__(
        self, *, auto_approve: bool | str = False, response_timeout: timedelta | None = DEFAULT_RESPONSE_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        self.auto_approve = auto_approve
        super().__init__(options=[APPROVE, REJECT], defaults=REJECT, multiple=False,
                         response_timeout=response_timeout, **kwargs)

    def execute(self, context: Any) -> Any:
        if str(self.auto_approve).strip().lower() in _TRUE:
            self.log.info("Approved without asking: the DAG param auto_approve is on")
            return {"chosen_options": [APPROVE], "params_input": {}, "responded_at": utcnow().isoformat(),
                    "responded_by_user": {"id": AUTO_APPROVER, "name": AUTO_APPROVER}}
        return super().execute(context)


def promote(session: Any, decision: dict[str, Any], approval: dict[str, Any], *, context: Any = None) -> dict[str, Any]:
    """Move the alias on Approve, as the approver (the event log's ``created_by``), and record
    the alias's Asset event; on Reject, change nothing. Returns what happened, in words too."""
    from airflow.sdk import get_current_context

    from neve import Registry

    context = context if context is not None else get_current_context()
    candidate = ModelVersionRef.from_dict(decision["candidate"])
    alias = decision["alias"]
    current = decision.get("production")
    was = current["version"] if current else None
    who = (approval.get("responded_by_user") or {}).get("name")
    if list(approval.get("chosen_options") or []) != [APPROVE]:
        by = f"{who} rejected" if who else "nobody answered in time, so the default rejected"
        message = f"{by} {candidate.model} {candidate.version}: {alias} stays {was or 'unset'}"
        print(message)
        return {"promoted": False, "by": who, "message": message, "alias": alias, "version": was}
    registry = Registry(session)
    ti = context["ti"]
    run = {"dag_id": ti.dag_id, "dag_run_id": ti.run_id, "task_id": ti.task_id}
    with registry.acting_as(who or AUTO_APPROVER, via="airflow-approval", airflow=run):
        registry.get_model(candidate.model).set_alias(alias, candidate.version)
    ref = model_version_ref(registry.get_model(candidate.model).version(candidate.version), session)
    record_model_event(ref, "promoted", context=context, alias=alias)
    how = "auto-approved (DAG param auto_approve)" if who == AUTO_APPROVER else f"approved by {who}"
    message = f"{alias} is now {candidate.model} {candidate.version} (was {was or 'unset'}): {how}"
    print(message)
    return {"promoted": True, "by": who, "message": message, "alias": alias, "version": candidate.version}
