"""The Spark driver: URLs, Airflow connections, and what local Spark does differently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import neve
from neve.engine import driver_for
from neve.engine._airflow_conn import url_from_env
from neve.engine.spark import SparkDriver
from neve.errors import DataFileError, EngineError, InvalidURLError, TableNotFoundError
from tests._servers.postgres import _free_port

spark_only = pytest.mark.engines("spark", reason="tests of the Spark driver itself")


def _url(raw: str) -> str:
    return url_from_env("x", {"AIRFLOW_CONN_X": raw})


@pytest.mark.parametrize(
    ("url", "master", "database"),
    [
        ("spark://local[2]", "local[2]", None),
        ("spark://local[*]?database=ml", "local[*]", "ml"),
        ("spark://local", "local", None),
        ("spark://spark-master:7077/data/wh", "spark://spark-master:7077", None),
        ("spark://yarn?database=ml", "yarn", "ml"),
    ],
)
def test_url_names_the_master_and_database(url: str, master: str, database: str | None) -> None:
    driver = driver_for(url)
    assert isinstance(driver, SparkDriver)
    assert (driver.master, driver.database, driver.is_connect) == (master, database, False)


def test_url_path_is_the_warehouse_and_defaults_under_dot_neve() -> None:
    assert driver_for("spark://local[2]/tmp/wh").warehouse == Path("/tmp/wh")
    assert driver_for("spark://local[2]/./wh").warehouse == Path("wh").resolve()
    assert driver_for("spark://local[2]").warehouse == Path(".neve/spark/warehouse").resolve()
    assert driver_for("spark://local[2]").default_stage(None) == str(Path(".neve/spark/stage").resolve())


def test_url_options_other_than_spark_settings_are_refused() -> None:
    driver = driver_for("spark://local[2]?spark.driver.memory=2g&memory=2g")
    with pytest.raises(InvalidURLError, match="memory"):
        _ = driver.spark_conf
    assert driver_for("spark://local[2]?spark.driver.memory=2g").spark_conf == {"spark.driver.memory": "2g"}


def test_shuffle_partitions_follow_the_local_cores() -> None:
    assert driver_for("spark://local[3]").cores == 3


def test_spark_connect_url_keeps_its_token_out_of_messages() -> None:
    driver = driver_for("sc://cluster.example:15002/;token=s3cr3t-token")
    assert driver.is_connect
    assert driver.connect_url == "sc://cluster.example:15002/;token=s3cr3t-token"


def test_an_unreachable_spark_connect_server_fails_at_once_naming_it() -> None:
    """The client alone retries for ten minutes; neve names the address right away."""
    port = _free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(EngineError, match=f"sc://127.0.0.1:{port}") as info:
        neve.connect(f"sc://127.0.0.1:{port}/;token=s3cr3t-token")
    assert "s3cr3t" not in str(info.value)
    assert time.monotonic() - started < 60


def test_airflow_spark_connection_with_a_local_master() -> None:
    raw = json.dumps({"conn_type": "spark", "host": "local[2]", "schema": "ml",
                      "extra": {"warehouse": "/data/wh", "spark.driver.memory": "4g", "queue": "q"}})
    url = _url(raw)
    assert url == "spark://local[2]/data/wh?spark.driver.memory=4g&database=ml"
    driver = driver_for(url)
    assert (driver.master, driver.database, driver.warehouse) == ("local[2]", "ml", Path("/data/wh"))


def test_airflow_spark_connection_with_a_standalone_master_and_port() -> None:
    url = _url(json.dumps({"conn_type": "spark", "host": "spark://master", "port": 7077}))
    assert driver_for(url).master == "spark://master:7077"


def test_airflow_spark_connection_pointing_at_spark_connect() -> None:
    url = _url(json.dumps({"conn_type": "spark", "host": "sc://cluster", "port": 15002}))
    assert url == "sc://cluster:15002/"
    assert driver_for(url).is_connect


def test_airflow_spark_connect_connection_carries_user_and_token() -> None:
    raw = json.dumps({"conn_type": "spark_connect", "host": "cluster", "port": 15002, "login": "ann",
                      "password": "tok", "extra": {"use_ssl": True}})
    assert _url(raw) == "sc://cluster:15002/;user_id=ann;token=tok;use_ssl=true"
    url = _url(json.dumps({"conn_type": "spark_connect", "host": "cluster", "port": 15002, "schema": "ml"}))
    assert url == "sc://cluster:15002/?database=ml"
    assert (driver_for(url).database, driver_for(url).connect_url) == ("ml", "sc://cluster:15002/")


@spark_only
def test_table_names_keep_their_case(session: neve.Session) -> None:
    session.create_table("TAXI_DATA", pd.DataFrame({"Mixed_Case": [1.5, 2.5]}))
    assert "TAXI_DATA" in session.list_tables()
    assert session.table("TAXI_DATA").Mixed_Case.sum().execute() == 4.0
    with pytest.raises(TableNotFoundError, match="TAXI_DATA"):
        session.table("taxi_data")


@spark_only
def test_native_csv_load_appends_and_overwrites(session: neve.Session, taxi_files: list[Path]) -> None:
    raw = session.load_files(taxi_files[:1], "TAXI_RAW")
    assert raw.schema()["pickup_datetime"].is_timestamp()
    first = raw.count().execute()
    session.load_files(taxi_files[1:], "TAXI_RAW")
    both = session.table("TAXI_RAW").count().execute()
    assert both > first
    session.load_files(taxi_files, "TAXI_RAW", overwrite=True)
    assert session.table("TAXI_RAW").count().execute() == both


@spark_only
def test_native_parquet_load(session: neve.Session, tmp_path: Path) -> None:
    for i in range(2):
        pq.write_table(pa.table({"A": [i, i + 10], "B": ["x", "y"]}), tmp_path / f"p{i}.parquet")
    t = session.load_files(sorted(tmp_path.glob("*.parquet")), "TAXI_P")
    assert sorted(t.A.execute()) == [0, 1, 10, 11]
    # Spark's writer resolves the name under the context's case setting, not the session's.
    assert "TAXI_P" in session.list_tables()
    assert session.table("TAXI_P").count().execute() == 4


@spark_only
def test_a_bad_file_is_named(session: neve.Session, tmp_path: Path, taxi_files: list[Path]) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"A": [1]}), good)
    with pytest.raises(DataFileError, match="bad.parquet"):
        session.load_files([good, bad], "P")
    with pytest.raises(DataFileError, match="mix"):
        session.load_files([good, taxi_files[0]], "P")


@spark_only
def test_inserted_values_are_bound_not_spliced(session: neve.Session) -> None:
    session.create_table("T", pd.DataFrame({"K": ["a"], "V": [1.0]}))
    tricky = "it's'); DROP TABLE T; --"
    session.driver.insert_rows(session.engine, "T", ["K", "V"], [(tricky, 2.0), ("b", None)])
    got = session.table("T").order_by("K").execute()
    assert list(got.K) == ["a", "b", tricky]
    assert got.V.isna().tolist() == [False, True, False]


@spark_only
def test_sessions_share_one_spark_but_not_a_database(engine_url: str) -> None:
    with neve.connect(engine_url) as a, neve.connect(engine_url.replace("database=", "database=other_")) as b:
        a.create_table("ONLY_IN_A", pd.DataFrame({"X": [1]}))
        assert "ONLY_IN_A" not in b.list_tables()
        assert a.engine._session.sparkContext is b.engine._session.sparkContext
        b.engine.raw_sql(f"DROP DATABASE `{b.driver.database}` CASCADE")


@spark_only
def test_a_second_warehouse_in_one_process_is_refused(session: neve.Session, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="one per"):
        neve.connect(f"spark://local[2]{tmp_path / 'elsewhere'}")
    # Without a path the running warehouse is used.
    with neve.connect("spark://local[2]") as again:
        assert again.engine._session.sparkContext is session.engine._session.sparkContext


@spark_only
def test_registry_tables_accept_duplicate_keys_on_spark(session: neve.Session) -> None:
    """Why a version name is claimed through the event log on Spark (neve/registry/_claim.py):
    its tables enforce no primary key, so inserting a second row for a name cannot fail, as
    it does on DuckDB and PostgreSQL."""
    from neve.registry._tables import VERSIONS, Store

    store = Store(session.driver, None)
    store.create(session.engine)
    row = ("m", "v1", 1, "uri", "sklearn", "{}", "{}", pd.Timestamp("2026-01-01"), "me", "{}")
    columns = ["MODEL_NAME", "VERSION_NAME", "VERSION_NUMBER", "ARTIFACT_URI", "FLAVOR", "PARAMS",
               "LINEAGE", "CREATED_AT", "CREATED_BY", "RUN_CONTEXT"]
    store.insert(session.engine, VERSIONS, columns, [row])
    store.insert(session.engine, VERSIONS, columns, [row])  # no uniqueness violation
    assert session.engine.table(VERSIONS).count().execute() == 2


@spark_only
def test_sessions_of_one_process_write_the_registry_at_once_and_lose_nothing(engine_url: str) -> None:
    """Threads of one process, each with its own Spark session (a notebook, a threaded
    scheduler), logging versions and metrics at once: every row arrives, because neve takes
    turns on the appends that would otherwise share a table's _temporary folder. Separate
    processes get no such guarantee (docs/spark.md); this is the case neve supports."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.registry._workers import small_model

    model, _ = small_model()
    neve.Registry(engine_url)  # tables exist before the race, as in production

    def log_two(worker: int) -> None:
        reg = neve.Registry(engine_url)
        for i in range(2):
            mv = reg.log_model(model, f"m{worker}", metrics={"i": i})
            mv.set_metric("after", worker * 10 + i)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(log_two, range(3)))
    reg = neve.Registry(engine_url)
    for worker in range(3):
        shown = reg.get_model(f"m{worker}").show_versions()
        assert sorted(shown.version_name) == ["v1", "v2"]
        assert sorted(shown.after.astype(int)) == [worker * 10, worker * 10 + 1]


# -- Spark Connect: a real server on loopback (tests/_servers/spark_connect.py) ----------------------


@pytest.fixture
def connect_url(spark_connect_url: str) -> str:
    """A fresh database on the test's Spark Connect server, dropped afterwards."""
    database = f"c_{uuid.uuid4().hex[:12]}"
    yield f"{spark_connect_url}/?database={database}"
    with neve.connect(spark_connect_url) as admin:
        admin.engine.raw_sql(f"DROP DATABASE IF EXISTS `{database}` CASCADE")


def test_spark_connect_tables_are_seen_from_another_process(connect_url: str) -> None:
    """What local Spark cannot do (its catalog lives in its process) and the taxi DAG needs:
    a table written by one Python is read by another, through the server's one catalog."""
    with neve.connect(connect_url) as session:
        session.create_table("TAXI_DATA", pd.DataFrame({"Mixed_Case": [1.5, 2.5, None]}))
    reader = (
        "import neve, sys\n"
        "with neve.connect(sys.argv[1]) as s:\n"
        "    t = s.table('TAXI_DATA')\n"
        "    print(t.count().execute(), t.Mixed_Case.sum().execute())\n"
    )
    out = subprocess.run([sys.executable, "-c", reader, connect_url], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "4.0"]


def test_spark_connect_uploads_local_files(connect_url: str, taxi_files: list[Path]) -> None:
    """The server cannot read the client's files: they are parsed here and uploaded, with
    the same rows and types as DuckDB's own CSV reader gives."""
    with neve.connect("duckdb://") as duck:
        expected = duck.load_files(taxi_files, "TAXI_RAW").count().execute()
    with neve.connect(connect_url) as session:
        raw = session.load_files(taxi_files[:1], "TAXI_RAW")
        assert raw.schema()["pickup_datetime"].is_timestamp()
        session.load_files(taxi_files[1:], "TAXI_RAW")
        assert session.table("TAXI_RAW").count().execute() == expected
        session.load_files(taxi_files, "TAXI_RAW", overwrite=True)
        assert session.table("TAXI_RAW").count().execute() == expected


def _taxi_features(session: neve.Session, files: list[Path]):
    return _features(session.load_files(files, "TAXI_RAW", overwrite=True))


def _features(raw):
    return raw.select(
        ZONE=raw.pickup_location_id.cast("string"),
        DISTANCE=raw.trip_distance.cast("float64"),
        FARE=raw.fare_amount.cast("float64"),
    )


def _taxi_pipeline():
    from neve import Pipeline
    from neve.linear_model import LinearRegression
    from neve.preprocessing import OneHotEncoder, StandardScaler

    return Pipeline([
        ("ohe", OneHotEncoder(input_cols=["ZONE"], output_cols=["ZONE"], handle_unknown="ignore")),
        ("std", StandardScaler(input_cols=["DISTANCE"], output_cols=["DISTANCE"])),
        ("model", LinearRegression(label_cols=["FARE"], output_cols=["PREDICTION"])),
    ])


def _sklearn_twin(frame: pd.DataFrame):
    """scikit-learn's own fit of the same pipeline on the same rows: dense one-hot and the
    exact least-squares solver (``lstsq``), the oracle for the Connect fit."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = ColumnTransformer([("ohe", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["ZONE"]),
                               ("std", StandardScaler(), ["DISTANCE"])])
    return Pipeline([("prep", steps), ("model", LinearRegression())]).fit(frame[["ZONE", "DISTANCE"]], frame.FARE)


def _assert_predictions_equal(ours: Any, theirs: Any) -> None:
    """Equal to 1e-9 of the predictions' scale. A fare predicted near zero is a difference of
    terms in the hundreds, so Spark's partial sums, added in an order that depends on its
    partitions, leave it ~3e-10 off (a 1e-9 relative tolerance of -0.1 is 1e-10)."""
    theirs = np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9 * np.abs(theirs).max())


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["ZONE", "DISTANCE", "FARE", "PREDICTION"], ignore_index=True)


def test_spark_connect_fits_what_scikit_learn_fits(connect_url: str, taxi_files: list[Path]) -> None:
    with neve.connect(connect_url) as session:
        data = _taxi_features(session, taxi_files[:1])
        on_spark = _taxi_pipeline().fit(data)
        predicted = _in_order(session.execute(on_spark.predict(data)))
    theirs = _sklearn_twin(predicted)
    ohe, std, model = (on_spark.named_steps[k] for k in ("ohe", "std", "model"))
    their_ohe, their_std = (theirs.named_steps["prep"].named_transformers_[k] for k in ("ohe", "std"))
    assert ohe.categories_["ZONE"] == list(their_ohe.categories_[0])
    assert list(std.mean_.values()) == pytest.approx(list(their_std.mean_), rel=1e-12)
    assert list(std.scale_.values()) == pytest.approx(list(their_std.scale_), rel=1e-12)
    # One-hot columns plus an intercept are collinear: the coefficients are the minimum-norm
    # solution, which only an exact solver reproduces; the predictions are unique either way.
    np.testing.assert_allclose(model.coef_, theirs.named_steps["model"].coef_, rtol=1e-9, atol=1e-9)
    _assert_predictions_equal(predicted.PREDICTION, theirs.predict(predicted[["ZONE", "DISTANCE"]]))


def test_spark_connect_registry_logs_and_scores_in_the_engine(connect_url: str, taxi_files: list[Path],
                                                              tmp_path: Path) -> None:
    """log_model writes the registry's tables on the server and the files to a stage beside
    the client; mv.run scores as one SELECT there, equal to scikit-learn's predictions."""
    with neve.connect(connect_url) as session:
        data = _taxi_features(session, taxi_files[:1])
        pipe = _taxi_pipeline().fit(data)
        expected = session.execute(pipe.predict(data).order_by("ZONE", "DISTANCE", "FARE"))
        registry = neve.Registry(session, stage=str(tmp_path / "stage"))
        mv = registry.log_model(pipe, "fare", metrics={"rows": 10000})
    with neve.connect(connect_url) as session:
        mv = neve.Registry(session, stage=str(tmp_path / "stage")).get_model("fare").version("v1")
        assert mv.metrics == {"rows": 10000}
        scored = mv.run(_features(session.table("TAXI_RAW")))
        assert scored.path == "sql"
        got = _in_order(session.execute(scored))
    pd.testing.assert_series_equal(got.PREDICTION, _in_order(expected).PREDICTION, rtol=1e-9)
    _assert_predictions_equal(got.PREDICTION, _sklearn_twin(got).predict(got[["ZONE", "DISTANCE"]]))


def test_local_spark_still_works_after_a_spark_connect_session_in_the_process(
    connect_url: str, spark_url: str
) -> None:
    """A process may use both (the Airflow worker runs a task on a cluster, then one on local
    Spark): pyspark's generic builder marks the whole process as a Connect client."""
    with neve.connect(connect_url) as remote:
        remote.create_table("R", pd.DataFrame({"A": [1, 2]}))
        assert remote.table("R").A.sum().execute() == 3
    with neve.connect(f"{spark_url}&database=after_connect") as local:
        local.create_table("L", pd.DataFrame({"A": [1, 2, 3]}), overwrite=True)
        assert local.table("L").A.sum().execute() == 6
        assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ


# -- local Spark's tables across processes (docs/spark.md) -----------------------------------------

_RUN_AGAIN = """
import json, sys
import pandas as pd
import neve

run = int(sys.argv[2])
with neve.connect(sys.argv[1]) as s, neve.connect(sys.argv[1] + "?database=ml") as ml:
    seen = {"default": s.list_tables(), "ml": ml.list_tables()}
    left = s.table("T").order_by("A").A.execute().tolist() if "T" in seen["default"] else None
    s.create_table("T", pd.DataFrame({"A": [float(run), run + 0.5]}), overwrite=True)
    if run == 1:
        ml.create_table("FEATURES", pd.DataFrame({"Mixed_Case": [1, 2, 3]}))
        s.create_table("DROPPED", pd.DataFrame({"X": [1]}))
        s.engine.drop_table("DROPPED")
        s.create_table("EMPTY", pd.DataFrame({"X": pd.Series([], dtype="float64")}))
        s.engine.raw_sql("CREATE TABLE `NO_FILES` (`X` double)")  # DDL writes no file
    else:
        ml.create_table("FEATURES", pd.DataFrame({"Mixed_Case": [9]}), overwrite=True)
        s.engine.raw_sql("CREATE TABLE `NO_FILES` (`X` double)")
        seen["empty"] = {k: str(v) for k, v in s.table("EMPTY").schema().items()} == {"X": "float64"}
    print(json.dumps({"seen": seen, "left": left, "features": ml.table("FEATURES").count().execute()}))
"""


@spark_only
def test_local_spark_sees_the_tables_an_earlier_process_left(tmp_path: Path) -> None:
    """The issue's script, run twice in a row: the second process sees what the first wrote
    (in the default database and in another, an empty table too), overwrites it, and does not
    see a table the first dropped. A table made by DDL alone has no file to hold its schema:
    it is not remembered, and making it again works."""
    url = f"spark://local[1]{tmp_path / 'warehouse'}"

    def run(n: int) -> dict:
        done = subprocess.run([sys.executable, "-c", _RUN_AGAIN, url, str(n)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = run(1)
    assert first["seen"] == {"default": [], "ml": []} and first["left"] is None
    second = run(2)
    assert sorted(second["seen"]["default"]) == ["EMPTY", "T"]  # not DROPPED, not NO_FILES
    assert second["seen"]["ml"] == ["FEATURES"] and second["seen"]["empty"]
    assert second["left"] == [1.0, 1.5] and second["features"] == 1
    # Overwriting replaced the files rather than adding to them.
    assert len(list((tmp_path / "warehouse" / "T").glob("*.parquet"))) == 1
