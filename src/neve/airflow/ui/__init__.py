"""neve's registry UI inside Airflow: a Models page under Browse and a Model tab on DAG runs.

An Airflow plugin (:class:`neve.airflow.ui.plugin.NevePlugin`, found through the
``airflow.plugins`` entry point) mounts a server-rendered FastAPI app at ``/neve`` in the
api-server and shows its pages as external views. See docs/ui.md.
"""
