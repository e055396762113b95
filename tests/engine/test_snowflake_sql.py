"""The SQL neve generates for Snowflake, run on the fakesnow emulator and checked against
DuckDB running the same Ibis expressions.

Everything goes through the real stack: a ``snowflake-connector-python`` connection to
fakesnow's server (in the ``fakesnow`` env, see tests/engine/_fakesnow.py), adopted with
``neve.connect(connection=...)``, so fits run their aggregate queries on the emulator,
transforms run their SELECT there, and the registry creates its tables and views there.
An ``xfail`` marks an emulator gap: SQL that real Snowflake runs but fakesnow 0.11 does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

import neve
from neve import Pipeline
from neve.engine.snowflake import SnowflakeDriver
from neve.errors import InvalidURLError, NeveInputError
from neve.preprocessing import (
    Binarizer,
    KBinsDiscretizer,
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    SimpleImputer,
    StandardScaler,
)
from tests.engine._fakesnow import Emulator, load

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def snow(emulator: Emulator) -> Iterator[neve.Session]:
    """A neve session over a connector connection to a private emulator database."""
    conn = emulator.connect()
    session = neve.connect(connection=conn)
    yield session
    conn.close()


@pytest.fixture(scope="module")
def duck() -> Iterator[neve.Session]:
    with neve.connect("duckdb://") as session:
        yield session


def frame(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = rng.normal(3.0, 2.0, n)
    x[::9] = np.nan
    return pd.DataFrame(
        {
            "ID": np.arange(n, dtype="int64"),
            "X": x,
            # A large mean next to a small spread: the case the two-pass variance exists for.
            "Y": 1e6 + rng.normal(0, 0.9, n),
            "Z": rng.integers(-5, 20, n).astype("int64"),
            "C": pd.array(
                [None if i % 11 == 0 else f"c{v}" for i, v in enumerate(rng.integers(0, 4, n))],
                dtype=object,
            ),
            "K": rng.integers(1, 5, n).astype("int64"),
        }
    )


@pytest.fixture(scope="module")
def tables(snow: neve.Session, duck: neve.Session) -> tuple[Any, Any]:
    data = frame()
    return load(snow, "T", data), duck.create_table("T", data)


#: Fitted state that records how the fitting engine reads names, so it differs by design:
#: DuckDB ignores case in column names (one-hot names are made unique ignoring case there).
ENGINE_STATE = {"names_ignore_case_": (False, True)}


def assert_state_equal(snow_state: Any, duck_state: Any, where: str = "") -> None:
    if isinstance(duck_state, dict):
        assert isinstance(snow_state, dict) and snow_state.keys() == duck_state.keys(), where
        for key in duck_state:
            if key in ENGINE_STATE:
                assert (snow_state[key], duck_state[key]) == ENGINE_STATE[key], f"{where}.{key}"
                continue
            assert_state_equal(snow_state[key], duck_state[key], f"{where}.{key}")
    elif isinstance(duck_state, (list, tuple)):
        assert len(snow_state) == len(duck_state), where
        for i, (a, b) in enumerate(zip(snow_state, duck_state, strict=True)):
            assert_state_equal(a, b, f"{where}[{i}]")
    elif isinstance(duck_state, float) and not isinstance(snow_state, str):
        if math.isnan(duck_state):
            assert snow_state is not None and math.isnan(snow_state), where
        else:
            assert snow_state == pytest.approx(duck_state, rel=1e-9, abs=1e-12), where
    else:
        assert snow_state == duck_state, where


def assert_frames_equal(got: pd.DataFrame, want: pd.DataFrame, key: list[str]) -> None:
    got = got.rename(columns=str.upper) if list(got.columns) != list(want.columns) else got
    assert list(got.columns) == list(want.columns)
    got = got.sort_values(key, kind="stable", na_position="last").reset_index(drop=True)
    want = want.sort_values(key, kind="stable", na_position="last").reset_index(drop=True)
    for col in want.columns:
        w, g = want[col], got[col]
        if pd.api.types.is_numeric_dtype(w) and not pd.api.types.is_bool_dtype(w):
            np.testing.assert_allclose(
                g.astype("float64").to_numpy(), w.astype("float64").to_numpy(),
                rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=col,
            )
        else:
            assert [None if pd.isna(v) else v for v in g] == [
                None if pd.isna(v) else v for v in w
            ], col


ROW_KEY = ["ID"]

CASES = {
    "standard": lambda: StandardScaler(input_cols=["X", "Y", "Z"]),
    "minmax": lambda: MinMaxScaler(feature_range=(-1, 2), clip=True, input_cols=["X", "Z"],
                                   output_cols=["X_MM", "Z_MM"]),
    "maxabs": lambda: MaxAbsScaler(input_cols=["X", "Z"]),
    "robust": lambda: RobustScaler(quantile_range=(10.0, 80.0), input_cols=["X", "Y", "Z"],
                                   output_cols=["XR", "YR", "ZR"]),
    "normalizer": lambda: Normalizer(norm="l2", input_cols=["X", "Z"], output_cols=["XN", "ZN"]),
    "binarizer": lambda: Binarizer(threshold=2.5, input_cols=["X"], output_cols=["XB"]),
    "kbins_uniform": lambda: KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="uniform",
                                              input_cols=["X", "Z"], output_cols=["XK", "ZK"]),
    "kbins_quantile": lambda: KBinsDiscretizer(n_bins=3, encode="onehot-dense", strategy="quantile",
                                               quantile_method="linear", input_cols=["Y"]),
    "onehot": lambda: OneHotEncoder(input_cols=["C", "K"], handle_unknown="ignore",
                                    drop_input_cols=True),
    "onehot_infrequent": lambda: OneHotEncoder(input_cols=["C"], min_frequency=15,
                                               handle_unknown="infrequent_if_exist"),
    "ordinal": lambda: OrdinalEncoder(input_cols=["C", "K"], output_cols=["C_ORD", "K_ORD"],
                                      handle_unknown="use_encoded_value", unknown_value=-1),
    "label": lambda: LabelEncoder(input_cols=["K"], output_cols=["K_LABEL"]),
    "impute_mean": lambda: SimpleImputer(strategy="mean", input_cols=["X"], add_indicator=True),
    "impute_median": lambda: SimpleImputer(strategy="median", input_cols=["X"], output_cols=["XM"]),
    "impute_frequent": lambda: SimpleImputer(strategy="most_frequent", input_cols=["C"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_transformer_fit_and_transform_match_duckdb(case: str, tables: tuple[Any, Any]) -> None:
    """Fit runs its aggregate query on the emulator, transform runs its SELECT there, and
    both equal DuckDB's; ``Pipeline.to_sql(..., dialect="snowflake")`` runs as printed."""
    t_snow, t_duck = tables
    snow_pipe = Pipeline([(case, CASES[case]())]).fit(t_snow)
    duck_pipe = Pipeline([(case, CASES[case]())]).fit(t_duck)
    assert_state_equal(snow_pipe.to_dict(), duck_pipe.to_dict())

    want = duck_pipe.transform(t_duck).execute()
    assert_frames_equal(snow_pipe.transform(t_snow).execute(), want, ROW_KEY)
    # The text a user would paste into a worksheet, compiled for an unbound table "T".
    sql = duck_pipe.to_sql(ibis.table(t_duck.schema(), name="T"), dialect="snowflake")
    with t_snow._find_backend().con.cursor() as cursor:
        got = cursor.execute(sql).fetch_pandas_all()
    assert_frames_equal(got, want, ROW_KEY)


def test_multi_step_pipeline_matches_duckdb(tables: tuple[Any, Any]) -> None:
    """Each step fits on the lazy output of the steps before it, all on the emulator."""
    t_snow, t_duck = tables

    def pipe() -> Pipeline:
        return Pipeline([
            ("impute", SimpleImputer(strategy="median", input_cols=["X"])),
            ("robust", RobustScaler(input_cols=["X", "Y"])),
            ("bins", KBinsDiscretizer(n_bins=3, encode="ordinal", strategy="quantile",
                                      quantile_method="linear", input_cols=["Z"])),
            ("minmax", MinMaxScaler(input_cols=["K"], output_cols=["K_MM"])),
            ("std", StandardScaler(input_cols=["X", "Y"])),
        ])

    snow_pipe, duck_pipe = pipe().fit(t_snow), pipe().fit(t_duck)
    assert_state_equal(snow_pipe.to_dict(), duck_pipe.to_dict())
    assert_frames_equal(
        snow_pipe.transform(t_snow).execute(), duck_pipe.transform(t_duck).execute(), ROW_KEY
    )


# -- sessions over an existing connection --------------------------------------------------------


def test_session_from_connector_connection(emulator: Emulator) -> None:
    conn = emulator.connect(schema="FEATURES")
    try:
        session = neve.connect(connection=conn)
        assert session.dialect == "snowflake"
        assert isinstance(session.driver, SnowflakeDriver)
        # Descriptive and secret-free: the connection's password never reaches the URL.
        assert session.url == "snowflake://fake@fakesnow/NEVE_DB/FEATURES"
        assert "fake:" not in session.url and "***" not in session.url
        load(session, "EVENTS", pd.DataFrame({"A": [1, 2, 3]}))
        assert session.list_tables() == ["EVENTS"]
        assert session.execute(session.table("EVENTS").A.sum()) == 6
        # The caller's connection is used as is, not re-opened.
        assert session.engine.con is conn
    finally:
        conn.close()


def test_session_from_backend_and_bad_connections() -> None:
    import ibis

    session = neve.engine.Session.from_backend(ibis.duckdb.connect())
    assert session.dialect == "duckdb"
    assert session.execute(ibis.literal(2) + 3) == 5
    with pytest.raises(NeveInputError, match="snowflake.connector connection or a Snowpark"):
        neve.connect(connection=object())
    with pytest.raises(InvalidURLError, match="not both"):
        neve.connect("duckdb://", connection=ibis.duckdb.connect())


def test_driver_url_kwargs_skip_object_udfs() -> None:
    driver = neve.engine.driver_for("snowflake://u:pw@acct/DB/SCH?warehouse=WH&role=R")
    assert driver.connect_kwargs() == {
        "account": "acct", "user": "u", "password": "pw", "database": "DB", "schema": "SCH",
        "warehouse": "WH", "role": "R",
    }


def test_driver_url_timeouts_and_port_are_numbers() -> None:
    """The connector hands timeouts to its HTTP client, which refuses text: ``?socket_timeout=600``
    must arrive as 600."""
    url = "snowflake://u:pw@acct/DB?host=h&port=8080&login_timeout=5&network_timeout=60&socket_timeout=600"
    kwargs = neve.engine.driver_for(url).connect_kwargs()
    assert (kwargs["port"], kwargs["login_timeout"], kwargs["network_timeout"], kwargs["socket_timeout"]) == (
        8080, 5, 60, 600,
    )
    assert kwargs["host"] == "h"


# -- the registry's DDL and DML ------------------------------------------------------------------


def registry_round_trip(session: neve.Session, stage: Path) -> dict[str, Any]:
    from sklearn.linear_model import LinearRegression

    from neve import Registry

    data = frame(30)
    features = data[["Y", "Z"]]
    model = LinearRegression().fit(features, data["K"])
    reg = Registry(session, stage=str(stage))
    mv = reg.log_model(model, model_name="trip_duration", sample_input=features.head(3),
                       metrics={"mse": 1.25}, params={"fit_intercept": True}, tags={"stage": "dev"})
    mv.set_metric("r2", 0.5)
    mv.set_tag("stage", "prod")
    reg.log_model(model, model_name="trip_duration", metrics={"mse": 2.0})
    m = reg.get_model("trip_duration")
    m.set_alias("production", mv.version_name)
    versions = m.show_versions()
    return {
        "tables": sorted(t for t in session.list_tables() if t.startswith("NEVE_")),
        "models": list(reg.show_models()["model_name"]),
        "versions": versions[["version_name", "mse", "r2"]].astype(object)
        .where(versions[["version_name", "mse", "r2"]].notna(), None).to_dict("list"),
        "aliases": [str(a) for a in versions["aliases"]],
        "metrics": mv.metrics,
        "tags": mv.tags,
        "production": m.version("production").version_name,
        "prediction": float(m.version("production").load().predict(features.head(1))[0]),
    }


def test_registry_tables_views_and_events_match_duckdb(emulator: Emulator, tmp_path: Path) -> None:
    """CREATE TABLE / views / bound INSERTs / folded reads, all compiled for Snowflake."""
    conn = emulator.connect(schema="MODEL_REGISTRY")
    try:
        got = registry_round_trip(neve.connect(connection=conn), tmp_path / "snow-stage")
    finally:
        conn.close()
    with neve.connect("duckdb://") as duck:
        want = registry_round_trip(duck, tmp_path / "duck-stage")
    assert got == want


# -- scoring and metrics -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored(snow: neve.Session, duck: neve.Session) -> tuple[Any, Any, pd.DataFrame, dict]:
    rng = np.random.default_rng(42)
    n = 200
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["A", "B", "C", "D"])
    X["C"] = np.round(X["C"], 1)  # ties on tree thresholds
    y = 2 * X["A"] - X["B"] + X["C"] * X["D"] + rng.normal(scale=0.3, size=n)
    X_nan = X.copy()
    X_nan.loc[rng.random(n) < 0.1, "A"] = np.nan  # NULL in the warehouse: trees route it
    data = X_nan.assign(ID=np.arange(n, dtype="int64"))
    targets = {"y": y.to_numpy(), "y_bin": np.where(y > 0, "yes", "no"),
               "y_multi": np.digitize(y, [-1.0, 1.0])}
    return load(snow, "S", data), duck.create_table("S", data), X, targets


def _models() -> dict[str, Any]:
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    return {
        "LinearRegression": (LinearRegression(), "y", "predict", False),
        "LogisticRegression": (LogisticRegression(max_iter=500), "y_bin", "predict_proba", False),
        "DecisionTreeRegressor": (DecisionTreeRegressor(max_depth=6, random_state=0), "y",
                                  "predict", True),
        "DecisionTreeClassifier": (DecisionTreeClassifier(max_depth=5, random_state=0),
                                   "y_multi", "predict_proba", True),
        "RandomForestRegressor": (RandomForestRegressor(n_estimators=6, max_depth=5,
                                                        random_state=0), "y", "predict", True),
        "RandomForestClassifier": (
            RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0),
            "y_bin", "predict", True,
        ),
        "GradientBoostingRegressor": (GradientBoostingRegressor(n_estimators=10, max_depth=3,
                                                                random_state=0), "y", "predict",
                                      False),
        "HistGradientBoostingRegressor": (HistGradientBoostingRegressor(max_iter=10,
                                                                        random_state=0),
                                          "y", "predict", True),
        "HistGradientBoostingClassifier": (HistGradientBoostingClassifier(max_iter=4,
                                                                          random_state=0),
                                           "y_multi", "predict_proba", True),
    }


def test_hist_gradient_boosting_categorical_on_the_emulator(snow: neve.Session) -> None:
    """Categorical splits (IN-lists of raw values) run on the emulator and equal scikit-learn,
    NULL and unseen categories included: predict to 1e-9, predict_proba to 1e-12."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from neve.scoring import score

    rng = np.random.default_rng(3)
    n = 300
    X = pd.DataFrame({"A": np.round(rng.normal(size=n), 1),
                      "S": rng.choice(["a", "b", "c", "d", "e"], n).astype(object),
                      "K": rng.choice([3, 5, 7, 11], n).astype("int64")})
    y = X["A"] + X["S"].map({"a": 2.0, "b": -1.0, "c": 0.5, "d": 3.0, "e": 0.0}) + (X["K"] == 7)
    X.loc[::13, "A"] = np.nan
    X.loc[::7, "S"] = None
    probe = pd.concat([X.head(60), pd.DataFrame({"A": [0.1, np.nan, 0.1], "S": ["zzz", None, "a"],
                                                 "K": [3, 4, 99]})], ignore_index=True)
    table = load(snow, "CATS", probe.assign(ID=np.arange(len(probe), dtype="int64")))
    for model, function, tol in [
        (HistGradientBoostingRegressor(max_iter=10, categorical_features=["S", "K"],
                                       random_state=0).fit(X, y), "predict", 1e-9),
        (HistGradientBoostingClassifier(max_iter=8, categorical_features=["S", "K"],
                                        random_state=0).fit(X, y > 1), "predict_proba", 1e-12),
    ]:
        result = score(table, model, function_name=function)
        assert result.path == "sql"
        got = result.execute().rename(columns=str.upper).sort_values("ID")
        outputs = [c for c in got.columns if c not in ("A", "S", "K", "ID")]
        expected = getattr(model, function)(probe).reshape(len(probe), -1)
        np.testing.assert_allclose(got[outputs].to_numpy(dtype=float), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", list(_models()))
def test_scoring_sql_matches_duckdb(name: str, scored: tuple[Any, Any, pd.DataFrame, dict]) -> None:
    """The compiled model runs on the emulator through Ibis, and as the SELECT text
    ``ibis.to_sql(..., dialect="snowflake")`` prints, run on the connector's cursor."""
    from neve.scoring import score

    t_snow, t_duck, X, targets = scored
    model, target, function, nan_ok = _models()[name]
    model.fit(X if not nan_ok else t_duck.execute()[list(X.columns)], targets[target])
    if not nan_ok:  # linear models and sklearn's GradientBoosting reject missing values
        t_snow, t_duck = t_snow.filter(t_snow.A.notnull()), t_duck.filter(t_duck.A.notnull())
    snow_pred = score(t_snow, model, function_name=function)
    duck_pred = score(t_duck, model, function_name=function)
    assert snow_pred.path == duck_pred.path == "sql"
    want = duck_pred.execute()
    # DuckDB itself equals scikit-learn here (tests/scoring); the emulator must equal DuckDB.
    features = want[list(X.columns)]
    outputs = [c for c in want.columns if c not in (*X.columns, "ID")]
    expected = getattr(model, function)(features)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(
            want[outputs].to_numpy(dtype=float), expected.reshape(len(want), -1), rtol=1e-9
        )
    else:
        np.testing.assert_array_equal(want[outputs[0]].to_numpy(), expected)
    assert_frames_equal(snow_pred.execute(), want, ROW_KEY)
    unbound = ibis.table(t_duck.schema(), name="S")
    if not nan_ok:
        unbound = unbound.filter(unbound.A.notnull())
    sql = ibis.to_sql(score(unbound, model, function_name=function), dialect="snowflake")
    with t_snow._find_backend().con.cursor() as cursor:
        got = cursor.execute(sql).fetch_pandas_all()
    assert_frames_equal(got, want, ROW_KEY)


def test_metrics_sql_matches_duckdb(scored: tuple[Any, Any, pd.DataFrame, dict]) -> None:
    """Every metric runs its query on the emulator and returns DuckDB's number."""
    from neve import metrics

    t_snow, t_duck, _, _ = scored

    def labelled(t: Any) -> Any:
        # Regression truth and prediction, a binary label with a score, and a 3-class label.
        return t.mutate(
            TRUTH=t.B * 2 + 1, PRED=t.B * 2 + 1 + t.C / 10,
            LABEL=ibis.ifelse(t.B > 0, "yes", "no"), GUESS=ibis.ifelse(t.C > -0.2, "yes", "no"),
            P=(t.C / 8 + 0.5).clip(0.01, 0.99),
            K3=(t.ID % 3).cast("int64"), G3=((t.ID + (t.D > 0).cast("int64")) % 3).cast("int64"),
        )

    snow, duck = labelled(t_snow), labelled(t_duck)
    calls = {
        "mse": lambda t: metrics.mean_squared_error(t, "TRUTH", "PRED"),
        "mae": lambda t: metrics.mean_absolute_error(t, "TRUTH", "PRED"),
        "r2": lambda t: metrics.r2_score(t, "TRUTH", "PRED"),
        "accuracy": lambda t: metrics.accuracy_score(t, "LABEL", "GUESS"),
        "precision": lambda t: metrics.precision_score(t, "LABEL", "GUESS", pos_label="yes"),
        "recall_macro": lambda t: metrics.recall_score(t, "K3", "G3", average="macro"),
        "f1_per_label": lambda t: metrics.f1_score(t, "K3", "G3", average=None),
        "roc_auc": lambda t: metrics.roc_auc_score(t, "LABEL", "P", pos_label="yes"),
        "log_loss": lambda t: metrics.log_loss(t, "LABEL", "P"),
    }
    for name, call in calls.items():
        want = call(duck)
        np.testing.assert_allclose(call(snow), want, rtol=1e-9, atol=1e-12, err_msg=name)


def test_model_version_run_on_the_internal_stage(emulator: Emulator) -> None:
    """``mv.run``: the logged pipeline and model, loaded from ``@NEVE_STAGE`` and scored in
    one SELECT on the emulator, equal DuckDB's scoring of the same version."""
    from sklearn.ensemble import RandomForestRegressor

    from neve import Registry

    data = frame(60).dropna(subset=["X"]).reset_index(drop=True)
    conn = emulator.connect(schema="SCORING")
    try:
        snow = neve.connect(connection=conn)
        t_snow = load(snow, "T", data)
        with neve.connect("duckdb://") as duck:
            t_duck = duck.create_table("T", data)
            pipe = Pipeline([("std", StandardScaler(input_cols=["X", "Y"])),
                             ("ohe", OneHotEncoder(input_cols=["C"], handle_unknown="ignore"))])
            features = pipe.fit(t_duck).transform(t_duck).execute()
            cols = [c for c in features.columns if c.startswith(("X", "Y", "C_"))]
            model = RandomForestRegressor(n_estimators=4, max_depth=4, random_state=0)
            model.fit(features[cols], data["Z"])
            reg = Registry(snow, schema="SCORING")
            mv = reg.log_model(model, "trip", feature_pipeline=pipe)
            assert mv.lineage()["artifact_uri"] == "@SCORING.NEVE_STAGE/trip/v1"
            got = reg.get_model("trip").version("v1").run(t_snow)
            assert got.path == "sql"
            from neve.scoring import score

            want = score(t_duck, model, pipeline=pipe).execute()
        assert_frames_equal(got.execute(), want, ROW_KEY)
    finally:
        conn.close()
