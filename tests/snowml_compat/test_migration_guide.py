"""docs/snowml.md: its neve script runs, and differs from its SnowML script only in the
imports and the session line."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import neve
from neve.registry import Registry
from tests.monitoring.test_drift import _clean as clean_taxi_trips

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "snowml.md"
TAXI_CSV = REPO / "data" / "nyc_taxi" / "yellow_tripdata_sample_2019-01.csv"


def block(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert match, f"no python block after <!-- {marker} --> in {GUIDE}"
    return match.group(1)


def body(code: str) -> list[str]:
    """The script without its import lines and its session line."""
    return [
        line
        for line in code.splitlines()
        if not line.startswith(("import ", "from ")) and not line.startswith("session = ")
    ]


def test_the_two_scripts_differ_only_in_imports_and_session() -> None:
    snowml, ours = block("snowml-script"), block("neve-script")
    assert body(snowml) == body(ours)
    assert "snowflake" not in "\n".join(line for line in ours.splitlines() if line.startswith(("import", "from")))


def taxi_data(url: str) -> None:
    """TAXI_DATA as the DAG's clean_trips makes it, from the repo's sample month."""
    with neve.connect(url) as session:
        session.load_files([TAXI_CSV], "TAXI_RAW", overwrite=True)
        session.create_table("TAXI_DATA", clean_taxi_trips(session.table("TAXI_RAW")), overwrite=True)


def test_the_neve_script_runs(tmp_path: Path, monkeypatch) -> None:
    url = f"duckdb:///{tmp_path / 'taxi.duckdb'}"
    taxi_data(url)
    monkeypatch.chdir(tmp_path)
    scope = {"NEVE_URL": url}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block("neve-script"), str(GUIDE), "exec"), scope)
    scope["session"].close()
    assert "v1" in printed.getvalue()  # show_versions() printed the logged version

    features, feature_cols = scope["features"], scope["feature_cols"]
    assert feature_cols[-1] == "TRIP_DISTANCE_SCALED"
    assert all(c.startswith(("PICKUP_LOCATION_ID_", "DROPOFF_LOCATION_ID_", "HOUR_OF_DAY_")) for c in feature_cols[:-1])
    assert len(feature_cols) == len(features.get_feature_names_out()) - 2  # less the two other columns
    with neve.connect(url) as session:
        mv = Registry(session).get_model("trip_duration_estimator").version("v1")
        assert mv.metrics["mse"] == scope["mse"] > 0
        model = mv.load()
        sample = scope["train"][feature_cols].head(3)
        assert list(model.predict(sample)) == list(scope["model"].predict(sample))
