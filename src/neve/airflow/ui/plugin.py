"""The Airflow plugin: registered through the ``airflow.plugins`` entry point, which Airflow
always loads (a provider's ``plugins`` list loads only with ``lazy_discover_providers=False``).

Every Airflow component loads plugins at start-up, so this imports only FastAPI and Jinja2
(Airflow's own dependencies); the registry, pandas and Ibis load on the first page request.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from neve.airflow.ui.app import PREFIX, create_app

__all__ = ["NevePlugin"]

# Relative to Airflow's base URL (no leading slash); {DAG_ID} and {RUN_ID} are filled in.
_BASE = PREFIX.lstrip("/")
_ICON = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
    "stroke='%23888' stroke-width='2'><path d='M12 2 3 7v10l9 5 9-5V7z'/><path d='M3 7l9 5 9-5M12 12v10'/></svg>"
)


class NevePlugin(AirflowPlugin):
    name = "neve"
    fastapi_apps = [{"app": create_app(), "url_prefix": PREFIX, "name": "neve registry"}]
    external_views = [
        {
            "name": "Models",
            "href": f"{_BASE}/models",
            "url_route": "neve-models",
            "category": "browse",
            "destination": "nav",
            "icon": _ICON,
        },
        {
            "name": "Model",
            "href": f"{_BASE}/runs/{{DAG_ID}}/{{RUN_ID}}",
            "url_route": "neve-run-model",
            "destination": "dag_run",
            "icon": _ICON,
        },
    ]
