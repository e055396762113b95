"""The runner behind ``make demo`` and ``make airflow`` (repo tooling, not shipped in the wheel)."""
