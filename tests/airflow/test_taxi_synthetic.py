"""The flagship DAG's cleaning and pipeline run on neve.datasets.taxi output, as the
scale benchmark and the 10M-row dag.test() measurement rely on."""

from __future__ import annotations

import neve
from neve.datasets import taxi


def test_clean_trips_and_pipeline_run_on_synthetic_trips(taxi_module, tmp_path):
    with neve.connect(f"duckdb:///{tmp_path / 'syn.duckdb'}") as session:
        raw = taxi(session, 20_000, seed=0, table="RAW")
        session.create_table("TAXI_DATA", taxi_module.clean_trips(raw), overwrite=True)
        data = session.table("TAXI_DATA")
        kept = session.execute(data.count())
        assert 19_000 < kept < 20_000  # the dirty rows, and only those, are dropped
        pipe = taxi_module.build_pipeline().fit(data)
        features = pipe.transform(data)
        assert "TRIP_DISTANCE_SCALED" in features.columns
        assert len(features.columns) > 300


def test_the_train_pipeline_fits_synthetic_trips_from_one_query(taxi_module, tmp_path):
    from neve.linear_model import LinearRegression
    from neve.model_selection import train_test_split

    m = taxi_module
    with neve.connect(f"duckdb:///{tmp_path / 'syn.duckdb'}") as session:
        data = session.create_table("TAXI_DATA", m.clean_trips(taxi(session, 20_000, seed=1, table="RAW")))
        train, _ = train_test_split(data, test_size=0.33, random_state=42, key=m.ID)
        pipe = neve.Pipeline([*m.build_pipeline().steps,
                              ("model", LinearRegression(label_cols=[m.TARGET], passthrough_cols=["TRIP_DISTANCE"]))])
        with neve.capture_queries() as log:
            pipe.fit(train.select(*m.RAW_FEATURES, m.TARGET))
        assert len(log.scans) == 1  # categories, the scale and XᵀX, Xᵀy: one GROUP BY, no table written
        assert len(pipe["model"].coef_) > 300 and "TRIP_DISTANCE" not in pipe["model"].feature_names_in_
