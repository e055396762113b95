"""The registry UI's FastAPI app, mounted by the plugin at ``/neve`` in Airflow's api-server.

Airflow does not authenticate plugin routes, so every route here declares Airflow's own
access checks: reading needs read access to assets (models publish Asset events), acting
(alias, tag, comment) needs edit access to assets, and a DAG run's Model tab also needs
read access to that DAG's runs. The user comes from the same JWT (cookie or bearer token)
the rest of the UI uses. The public ``/docs`` and ``/openapi.json`` are off.

Heavy imports (pandas, Ibis, the registry) wait for the first page request.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_asset, requires_access_dag
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

__all__ = ["PREFIX", "conn_id", "create_app"]

#: Where the plugin mounts the app in the api-server.
PREFIX = "/neve"
_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# A global, not a context value: the templates' imported macros see globals only.
_TEMPLATES.env.globals["quote"] = lambda value: urllib.parse.quote(str(value), safe="")

def _who(request: Request, user: GetUserDep) -> None:
    request.state.neve_user = user


Read = [Depends(requires_access_asset("GET")), Depends(_who)]
Edit = [Depends(requires_access_asset("PUT"))]
RunRead = [Depends(requires_access_dag("GET", DagAccessEntity.RUN)), *Read]


def conn_id() -> str:
    """The Airflow connection of the registry shown: ``[neve] ui_conn_id``, else the
    ``NEVE_CONN_ID`` the DAGs read, else ``neve_default``."""
    from airflow.configuration import conf

    return conf.get("neve", "ui_conn_id", fallback=None) or os.environ.get("NEVE_CONN_ID") or "neve_default"


def _registry_from_connection() -> Any:
    from neve.airflow.hooks.neve import NeveHook
    from neve.registry import Registry

    # From the URL, not a Session: on a DuckDB file the registry then holds the file lock
    # only for each read, never for the life of the api-server.
    return Registry(NeveHook(conn_id()).get_url())


def _run_outputs(dag_id: str, run_id: str) -> list[tuple[str, Any]] | None:
    """(task_id, value) of every XCom of the run; ``None`` when there is no such run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        if session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) is None:
            return None
        rows = session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id)).all()
        return [(row.task_id, XComModel.deserialize_value(row)) for row in rows]


def _record_alias_moved(model: str, alias: str, version: str, user: str) -> None:
    """Record the Asset event of an alias moved from this UI, as a task's move records it, so
    a DAG scheduled on :func:`~neve.airflow.assets.alias_asset` runs. Nothing when no DAG
    declares that Asset (Airflow knows only the Assets DAGs name)."""
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from neve.airflow.assets import alias_asset, connection_registry

    asset = alias_asset(connection_registry(conn_id()), model, alias)
    with create_session() as session:
        found = session.scalar(select(AssetModel).where(AssetModel.uri == asset.uri, AssetModel.name == asset.name))
        if found is not None:
            extra = {"action": "promoted", "model": model, "version": version, "alias": alias, "by": user,
                     "via": "airflow-ui"}
            asset_manager.register_asset_change(asset=found, extra=extra, source_is_api=True, session=session)


class _Registry:
    """One registry per process, opened on first use; calls are serialised (a server
    connection is not shared between threads)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory, self._registry, self.lock = factory, None, threading.RLock()

    def get(self) -> Any:
        with self.lock:
            if self._registry is None:
                self._registry = self._factory()
            return self._registry


def create_app(
    registry: Callable[[], Any] | None = None,
    run_outputs: Callable[[str, str], list[tuple[str, Any]] | None] | None = None,
    alias_moved: Callable[[str, str, str, str], None] | None = None,
) -> FastAPI:
    """The app; ``registry`` makes the Registry shown (default: from the Airflow connection,
    see :func:`conn_id`), ``run_outputs`` reads a DAG run's XComs (default: Airflow's DB),
    ``alias_moved(model, alias, version, user)`` follows an alias set here (default: the
    alias's Asset event)."""
    app = FastAPI(
        title="neve registry", docs_url=None, redoc_url=None, openapi_url=None,
        dependencies=[Depends(_attach_auth_manager)],
    )
    source = _Registry(registry or _registry_from_connection)
    outputs = run_outputs or _run_outputs
    moved = alias_moved or (_record_alias_moved if registry is None else (lambda *args: None))

    def render(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        airflow_root = root[: -len(PREFIX)] if root.endswith(PREFIX) else ""
        context.update(
            root=root, airflow_root=airflow_root,
            user=getattr(request.state, "neve_user", None), can_edit=_can_edit(request),
        )
        return _TEMPLATES.TemplateResponse(request, template, context, status_code=code)

    def show(request: Request, template: str, build: Callable[[Any], dict[str, Any]]) -> HTMLResponse:
        from neve.errors import ModelNotFoundError, NeveInputError

        try:
            with source.lock:
                data = build(source.get())
        except ModelNotFoundError as exc:
            return render(request, "error.html", 404, status=404, title="Not found", message=str(exc))
        except NeveInputError as exc:
            return render(request, "error.html", 422, status=422, title="Invalid request", message=str(exc))
        return render(request, template, **data)

    def act(request: Request, user: Any, back: str, change: Callable[[Any], None]) -> Response:
        _check_origin(request)
        from neve.errors import ModelNotFoundError, NeveInputError

        try:
            with source.lock:
                reg = source.get()
                with reg.acting_as(user.get_name(), via="airflow-ui"):
                    change(reg)
        except ModelNotFoundError as exc:
            return render(request, "error.html", 404, status=404, title="Not found", message=str(exc))
        except NeveInputError as exc:
            return render(request, "error.html", 422, status=422, title="Nothing was changed", message=str(exc))
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(root + back, status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> HTMLResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return render(request, "error.html", 422, status=422, title="Invalid request", message=problems)

    @app.get("/", dependencies=Read, include_in_schema=False)
    def index(request: Request) -> Response:
        return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + "/models", status_code=307)

    @app.get("/models", response_class=HTMLResponse, dependencies=Read)
    def models(
        request: Request, q: str = "", tag: str = "", alias: str = "", sort: str = "model_name",
        order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc", page: Annotated[int, Query(ge=1)] = 1,
    ) -> HTMLResponse:
        from neve.airflow.ui._pages import models_page

        return show(request, "models.html", lambda reg: {
            **models_page(reg, q=q, tag=tag, alias=alias, sort=sort, descending=order == "desc", page=page),
            "q": q, "tag": tag, "alias": alias, "sort": sort, "order": order,
        })

    @app.get("/models/{model}", response_class=HTMLResponse, dependencies=Read)
    def model(
        request: Request, model: str, sort: str = "created_at",
        order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc", page: Annotated[int, Query(ge=1)] = 1,
        metric: str = "",
    ) -> HTMLResponse:
        from neve.airflow.ui._pages import model_page

        return show(request, "model.html", lambda reg: {
            **model_page(reg, model, sort=sort, descending=order == "desc", page=page, metric=metric),
            "sort": sort, "order": order,
        })

    @app.get("/models/{model}/versions/{version}", response_class=HTMLResponse, dependencies=Read)
    def version(request: Request, model: str, version: str, compare: str = "") -> HTMLResponse:
        from neve.airflow.ui._pages import version_page

        return show(request, "version.html", lambda reg: version_page(
            reg, model, version, compare=compare, dialect=reg.dialect))

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=RunRead)
    def run(request: Request, dag_id: str, run_id: str) -> HTMLResponse:
        from neve.airflow.ui._pages import run_page

        found = outputs(dag_id, run_id)
        if found is None:
            return render(request, "error.html", 404, status=404, title="Not found",
                          message=f"no run {run_id!r} of DAG {dag_id!r}")
        return show(request, "run.html", lambda reg: run_page(reg, dag_id, run_id, found))

    @app.post("/models/{model}/aliases", dependencies=Edit)
    def set_alias(
        request: Request, user: GetUserDep, model: str, alias: Annotated[str, Form()],
        version: Annotated[str, Form()],
    ) -> Response:
        def change(reg: Any) -> None:
            reg.get_model(model).set_alias(alias, version)
            moved(model, alias, version, user.get_name())

        return act(request, user, f"/models/{_q(model)}", change)

    @app.post("/models/{model}/aliases/{alias}/unset", dependencies=Edit)
    def unset_alias(request: Request, user: GetUserDep, model: str, alias: str) -> Response:
        return act(request, user, f"/models/{_q(model)}", lambda reg: reg.get_model(model).unset_alias(alias))

    @app.post("/models/{model}/tags", dependencies=Edit)
    def tag_model(
        request: Request, user: GetUserDep, model: str, key: Annotated[str, Form()],
        value: Annotated[str, Form()],
    ) -> Response:
        return act(request, user, f"/models/{_q(model)}", lambda reg: reg.get_model(model).set_tag(key, value))

    @app.post("/models/{model}/versions/{version}/tags", dependencies=Edit)
    def tag_version(
        request: Request, user: GetUserDep, model: str, version: str, key: Annotated[str, Form()],
        value: Annotated[str, Form()],
    ) -> Response:
        return act(request, user, f"/models/{_q(model)}/versions/{_q(version)}",
                   lambda reg: _exact(reg, model, version).set_tag(key, value))

    @app.post("/models/{model}/versions/{version}/comment", dependencies=Edit)
    def comment(
        request: Request, user: GetUserDep, model: str, version: str, text: Annotated[str, Form(max_length=4000)],
    ) -> Response:
        return act(request, user, f"/models/{_q(model)}/versions/{_q(version)}",
                   lambda reg: _exact(reg, model, version).set_comment(text))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        # 401/403 from Airflow's checks: a short page, no registry data.
        return render(request, "error.html", exc.status_code, status=exc.status_code,
                      title={401: "Sign in to Airflow", 403: "Not allowed"}.get(exc.status_code, "Error"),
                      message=str(exc.detail))

    return app


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _exact(reg: Any, model: str, version: str) -> Any:
    """The version called ``version``: actions never resolve an alias, so a tag or comment
    cannot land on whatever version an alias happens to point at now."""
    from neve.errors import ModelNotFoundError

    mv = reg.get_model(model).version(version)
    if mv.version_name != version:
        raise ModelNotFoundError(f"model {model!r} has no version {version!r} ({version!r} is an alias)")
    return mv


def _check_origin(request: Request) -> None:
    """Refuse cross-site form posts: browsers send Origin on POST, and it must be this host."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        allowed = {request.headers.get("host")}
        base = os.environ.get("AIRFLOW__API__BASE_URL")
        if base:
            allowed.add(urllib.parse.urlsplit(base).netloc)
        if urllib.parse.urlsplit(origin).netloc not in allowed:
            raise HTTPException(status_code=403, detail=f"cross-site request from {origin} refused")


def _attach_auth_manager(request: Request) -> None:
    """``request.app`` inside a mounted app is this app (whose start-up events never run),
    and Airflow's dependencies read ``request.app.state.auth_manager``: hand them the
    api-server's before any of them runs."""
    if getattr(request.app.state, "auth_manager", None) is None:
        from airflow.api_fastapi.app import get_auth_manager

        request.app.state.auth_manager = get_auth_manager()


def _can_edit(request: Request) -> bool:
    """Whether to show the action forms; the actions check access again themselves."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AssetDetails

    user = getattr(request.state, "neve_user", None)
    return user is not None and request.app.state.auth_manager.is_authorized_asset(
        method="PUT", details=AssetDetails(), user=user
    )
