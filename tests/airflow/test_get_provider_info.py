"""Airflow discovers neve's provider through the apache_airflow_provider entry point."""

from __future__ import annotations

import subprocess
import sys

from neve.airflow.get_provider_info import get_provider_info


def test_provider_info_matches_airflows_schema():
    from airflow.providers_manager import _create_provider_info_schema_validator

    _create_provider_info_schema_validator().validate(get_provider_info())


def test_airflow_finds_the_hook_and_the_decorator():
    from airflow.sdk import task
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from neve.airflow.decorators.neve import neve_task

    manager = ProvidersManagerTaskRuntime()
    assert manager.hooks["neve"].hook_class_name == "neve.airflow.hooks.neve.NeveHook"
    assert task.neve is neve_task


def test_provider_metadata_loads_without_the_heavy_imports():
    # Airflow reads every provider's metadata in each of its processes.
    code = (
        "import sys\n"
        "from neve.airflow.get_provider_info import get_provider_info\n"
        "get_provider_info()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ibis', 'sklearn', 'pandas', 'airflow'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
