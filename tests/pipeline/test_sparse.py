"""Pipeline.transform_sparse: the transformed table as CSR, equal to scikit-learn's sparse output."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MaxAbsScaler as SkMaxAbsScaler
from sklearn.preprocessing import OneHotEncoder as SkOneHotEncoder
from sklearn.preprocessing import StandardScaler as SkStandardScaler

import neve
from neve import Pipeline
from neve.errors import ColumnNotFoundError, ColumnTypeError, NeveInputError, UnknownCategoryError
from neve.preprocessing import MaxAbsScaler, OneHotEncoder, StandardScaler

CATEGORICAL = ["PICKUP", "DROPOFF", "HOUR"]


def _trips(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "PICKUP": rng.integers(1, 120, n),
            "DROPOFF": rng.choice([f"z{i}" for i in range(40)], n),
            "HOUR": rng.integers(0, 24, n),
            "DISTANCE": np.where(rng.random(n) < 0.1, 0.0, rng.exponential(3.0, n)),
            "FARE": rng.normal(10.0, 3.0, n),
            "DURATION": rng.exponential(900.0, n),
        }
    )


def _taxi_pipeline(handle_unknown: str = "ignore") -> Pipeline:
    return Pipeline(
        [
            ("ohe", OneHotEncoder(input_cols=CATEGORICAL, handle_unknown=handle_unknown)),
            ("mas", MaxAbsScaler(input_cols=["DISTANCE"])),
            ("std", StandardScaler(input_cols=["FARE"])),
        ]
    )


def _sklearn(train: pd.DataFrame) -> ColumnTransformer:
    # In-place steps keep the input's column order: the same order as this ColumnTransformer.
    return ColumnTransformer(
        [
            ("ohe", SkOneHotEncoder(handle_unknown="ignore", sparse_output=True), CATEGORICAL),
            ("mas", SkMaxAbsScaler(), ["DISTANCE"]),
            ("std", SkStandardScaler(), ["FARE"]),
        ],
        sparse_threshold=1.0,
        verbose_feature_names_out=False,
    ).fit(train)


def _same(a: sp.spmatrix, b: sp.spmatrix) -> None:
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    assert a.shape == b.shape
    assert a.nnz == b.nnz
    assert (a != b).nnz == 0


def test_equals_scikit_learn_sparse_one_hot_plus_scalers(session: neve.Session) -> None:
    train, score = _trips(), _trips(1000, seed=1)
    score.loc[:9, "PICKUP"] = 999  # unseen at fit: an all-zero block, as handle_unknown="ignore"
    pipe = _taxi_pipeline().fit(session.create_table("TRAIN", train))
    X, y, names = pipe.transform_sparse(session.create_table("SCORE", score), label_col="DURATION")

    sk = _sklearn(train)
    assert list(names) == list(sk.get_feature_names_out())
    assert isinstance(X, sp.csr_matrix) and X.has_sorted_indices
    expected = sp.csr_matrix(sk.transform(score))
    # One-hot and MaxAbs columns are bit-identical; StandardScaler's mean and variance are sums
    # the engine adds in its own order, so FARE agrees to rounding.
    _same(X[:, :-1], expected[:, :-1])
    np.testing.assert_allclose(X[:, -1].toarray(), expected[:, -1].toarray(), rtol=1e-12)
    np.testing.assert_array_equal(y, score["DURATION"].to_numpy())
    assert X[:10, : pipe.named_steps["ohe"].get_feature_names_out().size].sum(axis=1).A1.tolist() == [2.0] * 10


def test_batches_build_the_same_matrix_without_a_dense_copy() -> None:
    session = neve.connect("duckdb://")
    session.engine.raw_sql(
        "CREATE TABLE T AS SELECT i % 997 AS A, (i * 7) % 501 AS B, (i % 13) * 0.5 AS D "
        "FROM range(200000) r(i)"
    )
    table = session.table("T")
    pipe = Pipeline([("ohe", OneHotEncoder(input_cols=["A", "B"])), ("mas", MaxAbsScaler(input_cols=["D"]))])
    pipe.fit(table)
    tracemalloc.start()
    X, y, names = pipe.transform_sparse(table, batch_rows=20000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert X.shape == (200000, 997 + 501 + 1) and y is None
    # The dense matrix would take 200000 x 1499 x 8 bytes = 2.4 GB; CSR takes ~5 MB.
    assert peak < 60 * 2**20
    whole = pipe.transform_sparse(table, batch_rows=10**6).X
    _same(X, whole)
    dense_rows = pipe.transform(table.order_by("A").limit(50)).to_pandas()
    assert dense_rows.shape[1] == len(names)


@pytest.mark.parametrize(
    "encoder",
    [
        OneHotEncoder(input_cols=["C", "N"], drop="first", handle_unknown="ignore"),
        OneHotEncoder(input_cols=["C", "N"], min_frequency=30, handle_unknown="infrequent_if_exist"),
        OneHotEncoder(input_cols=["C", "N"], drop="if_binary", max_categories=3, handle_unknown="ignore"),
        OneHotEncoder(
            input_cols=["C", "N"], output_cols=["C_OUT", "N_OUT"], drop_input_cols=True, handle_unknown="ignore"
        ),
    ],
    ids=["drop-first", "infrequent", "if-binary", "new-names"],
)
def test_matches_the_dense_transform_for_every_encoder_option(session: neve.Session, encoder) -> None:
    # NULL and NaN categories, rare categories, unseen ones and a column kept as is.
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "C": rng.choice(["a", "b", "c", "d", None], 600, p=[0.5, 0.3, 0.1, 0.05, 0.05]),
            "N": rng.choice([1.5, 2.5, np.nan, 4.0], 600),
            "K": rng.integers(-3, 3, 600).astype("int64"),
        }
    )
    table = session.create_table("T", frame)
    pipe = Pipeline([("ohe", encoder)]).fit(table)
    score = frame.assign(C=frame["C"].where(frame.index % 50 != 0, "unseen"))
    scored = session.create_table("S", score)
    X, _, names = pipe.transform_sparse(scored)
    dense = session.execute(pipe.transform(scored))
    assert list(names) == list(dense.columns)
    _same(X, sp.csr_matrix(dense.to_numpy(dtype=np.float64)))


def test_feature_cols_and_label_select_columns(session: neve.Session) -> None:
    pipe = _taxi_pipeline().fit(session.create_table("T", _trips(300)))
    table = session.table("T")
    X, y, names = pipe.transform_sparse(table, label_col="DURATION", feature_cols=["DISTANCE", "HOUR_3"])
    assert list(names) == ["HOUR_3", "DISTANCE"]
    hour = session.execute(table.select("HOUR"))["HOUR"].to_numpy()
    np.testing.assert_array_equal(X[:, 0].toarray().ravel(), (hour == 3).astype(float))
    assert y.shape == (300,)


def test_errors_name_what_is_wrong(session: neve.Session) -> None:
    frame = _trips(200).assign(NOTE="x")
    table = session.create_table("T", frame)
    pipe = _taxi_pipeline(handle_unknown="error").fit(table)
    with pytest.raises(ColumnTypeError, match=r"'NOTE' \(string\) are not numeric"):
        pipe.transform_sparse(table, label_col="DURATION")
    with pytest.raises(ColumnNotFoundError, match="label_col 'DURATIONS'"):
        pipe.transform_sparse(table, label_col="DURATIONS")
    with pytest.raises(ColumnNotFoundError, match="feature_cols 'HOUR_99'"):
        pipe.transform_sparse(table, feature_cols=["HOUR_99"])
    unseen = session.create_table("U", frame.assign(HOUR=frame["HOUR"] + 100).drop(columns="NOTE"))
    with pytest.raises(UnknownCategoryError, match="HOUR"):
        pipe.transform_sparse(unseen, label_col="DURATION")


def test_a_step_reading_one_hot_outputs_is_refused() -> None:
    frame = _trips(100)
    pipe = Pipeline(
        [("ohe", OneHotEncoder(input_cols=["HOUR"])), ("std", StandardScaler(input_cols=["HOUR_1"]))]
    ).fit(frame)
    with pytest.raises(NeveInputError, match="step 'std' reads one-hot output column"):
        pipe.transform_sparse(frame)
