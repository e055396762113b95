"""Encoders against scikit-learn as the oracle, through pandas and a real DuckDB file."""

from __future__ import annotations

import datetime as dtm
import json
import math

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import preprocessing as skp

import neve
from neve import Pipeline
from neve.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    EmptyInputError,
    InvalidParameterError,
    NeveInputError,
    NotFittedError,
    UnknownCategoryError,
)
from neve.preprocessing import LabelEncoder, OneHotEncoder, OrdinalEncoder

QUOTED = ["O'Brien", '"x"', "é/ü", "a b", "Ω"]
TRAIN = pd.DataFrame(
    {
        "city name": [
            "O'Brien",
            '"x"',
            "é/ü",
            "O'Brien",
            None,
            "a b",
            "O'Brien",
            '"x"',
            "é/ü",
            "O'Brien",
        ],
        "n/level": [3, 1, 2, 3, 3, 1, 2, 3, 5, 3],
        "score": [1.5, np.nan, 2.0, 1.5, 1.5, np.nan, 2.0, 1.5, 7.25, 1.5],
        "flag": [True, False, True, True, False, True, True, True, True, False],
        "keep": range(10),
    }
)
# Every column has a value unseen in TRAIN (and NULL where TRAIN had none).
TEST = pd.DataFrame(
    {
        "city name": ["O'Brien", "Ω", "a b", None, "é/ü"],
        "n/level": [3, 4, 1, 2, 5],
        "score": [1.5, 9.0, np.nan, 2.0, 7.25],
        "flag": [True, False, True, False, True],
        "keep": range(5),
    }
)
CATS = ["city name", "n/level", "score", "flag"]
KNOWN_TEST = TEST.iloc[[0, 2, 3, 4]].reset_index(drop=True)


def run(path, step, train, test, session):
    """Fit on ``train`` and transform ``test`` through pandas, or through DuckDB file tables."""
    if path == "pandas":
        return step.fit(train).transform(test)
    tr = session.create_table("TRAIN", train, overwrite=True)
    te = session.create_table("TEST", test, overwrite=True)
    out = step.fit(tr).transform(te)
    assert isinstance(out, ibis.expr.types.Table)
    return session.execute(out)


def sk_frame(sk, X):
    out = sk.transform(X)
    out = out.toarray() if hasattr(out, "toarray") else np.asarray(out)
    return pd.DataFrame(out, columns=sk.get_feature_names_out())


def assert_same(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(ours.columns) == list(expected.columns)
    np.testing.assert_array_equal(ours.to_numpy(dtype=float), expected.to_numpy(dtype=float))


PATHS = ["pandas", "duckdb"]

OHE_CASES = [
    {},
    {"drop": "first"},
    {"drop": "if_binary"},
    {"drop": ["é/ü", 3, np.nan, False]},
    {"handle_unknown": "ignore"},
    {"handle_unknown": "ignore", "drop": "first"},
    {"handle_unknown": "infrequent_if_exist", "min_frequency": 2},
    {"handle_unknown": "infrequent_if_exist", "min_frequency": 0.25},
    {"handle_unknown": "infrequent_if_exist", "max_categories": 2},
    {
        "handle_unknown": "infrequent_if_exist",
        "min_frequency": 2,
        "max_categories": 3,
        "drop": "if_binary",
    },
    {"handle_unknown": "infrequent_if_exist", "max_categories": 3, "drop": "first"},
    {"handle_unknown": "ignore", "min_frequency": 3},
    {"handle_unknown": "warn", "min_frequency": 2},
    {
        "handle_unknown": "ignore",
        "categories": [['"x"', "O'Brien", "Ω"], [1, 2, 3], [1.5, 2.0, np.nan], [False, True]],
    },
    {"handle_unknown": "ignore", "dtype": np.float32},
    {"handle_unknown": "ignore", "dtype": np.int64},
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("params", OHE_CASES, ids=lambda p: json.dumps(p, default=str))
def test_onehot_matches_sklearn_on_a_second_split(path, params, session):
    cols = CATS
    sk = skp.OneHotEncoder(sparse_output=False, **params).fit(TRAIN[cols])
    test = TEST if params.get("handle_unknown") else KNOWN_TEST
    step = OneHotEncoder(input_cols=cols, **params)
    out = run(path, step, TRAIN, test, session)
    names = list(sk.get_feature_names_out())
    assert list(step.get_feature_names_out()) == names
    assert_same(out[names], sk_frame(sk, test[cols]))
    assert out["keep"].tolist() == test["keep"].tolist()
    if "dtype" in params:
        assert out[names[0]].dtype == np.dtype(params["dtype"])
    for col in cols:  # fitted state: plain Python values, in scikit-learn's order
        expected = sk.categories_[cols.index(col)].tolist()
        assert [str(v) for v in step.categories_[col]] == [str(v) for v in expected]
    if params.get("drop") is not None:
        assert list(step.drop_idx_) == list(sk.drop_idx_)


def test_onehot_block_replaces_the_input_in_place_and_keeps_other_columns():
    step = OneHotEncoder(input_cols=["n/level"], handle_unknown="ignore")
    out = step.fit(TRAIN).transform(TEST)
    assert list(out.columns) == [
        "city name",
        "n/level_1",
        "n/level_2",
        "n/level_3",
        "n/level_5",
        "score",
        "flag",
        "keep",
    ]
    assert out.index.equals(TEST.index)

    step = OneHotEncoder(input_cols=["flag"], output_cols=["F"])
    out = step.fit(TRAIN).transform(TRAIN)
    assert list(out.columns) == [*TRAIN.columns, "F_False", "F_True"]
    assert list(step.get_feature_names_out()) == ["F_False", "F_True"]
    dropped = OneHotEncoder(input_cols=["flag"], output_cols=["F"], drop_input_cols=True)
    assert "flag" not in dropped.fit(TRAIN).transform(TRAIN).columns


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "params",
    [{}, {"drop": "first"}, {"min_frequency": 2, "handle_unknown": "error"}],
    ids=["plain", "drop", "infrequent"],
)
def test_onehot_unknown_raises_naming_column_and_value(path, params, session):
    step = OneHotEncoder(input_cols=["city name"], **params)
    test = pd.DataFrame({"city name": ["O'Brien", "Ω"]})
    if path == "pandas":
        step.fit(TRAIN)
        with pytest.raises(
            UnknownCategoryError, match=r"unknown category 'Ω' in column 'city name'"
        ):
            step.transform(test)
        return
    train = session.create_table("TRAIN", TRAIN, overwrite=True)
    step.fit(train)
    # A lazy result is checked when it is built: the engine's own error from executing it
    # later would reach the caller without passing through neve.
    with pytest.raises(UnknownCategoryError, match=r"unknown category 'Ω' in column 'city name'") as info:
        step.transform(session.create_table("TEST", test, overwrite=True))
    assert isinstance(info.value, ValueError)
    # Rows that arrive after the check still abort the query, naming the value.
    target = session.create_table("LATER", test.head(1), overwrite=True)
    lazy = step.transform(target)
    session.engine.insert("LATER", test.tail(1))
    with pytest.raises(Exception, match=r"neve: unknown category in column 'city name': 'Ω'"):
        session.execute(lazy)


def test_null_unseen_at_fit_is_an_unknown_category():
    step = OneHotEncoder(input_cols=["flag"]).fit(TRAIN)
    with pytest.raises(UnknownCategoryError, match=r"unknown category NULL in column 'flag'"):
        step.transform(pd.DataFrame({"flag": [True, None]}, dtype="boolean"))
    ok = OneHotEncoder(input_cols=["flag"], handle_unknown="ignore").fit(TRAIN)
    out = ok.transform(pd.DataFrame({"flag": [True, None]}, dtype="boolean"))
    assert out.to_numpy().tolist() == [[0.0, 1.0], [0.0, 0.0]]


def test_given_categories_reject_unknown_values_at_fit():
    step = OneHotEncoder(input_cols=["n/level"], categories=[[1, 2, 3]])
    with pytest.raises(UnknownCategoryError, match=r"\['5'\] in column 'n/level' during fit"):
        step.fit(TRAIN)
    with pytest.raises(NotFittedError):
        step.transform(TRAIN)  # a failed fit leaves the step unfitted


ORD_CASES = [
    {},
    {"handle_unknown": "use_encoded_value", "unknown_value": -1},
    {"handle_unknown": "use_encoded_value", "unknown_value": np.nan},
    {"handle_unknown": "use_encoded_value", "unknown_value": -1, "encoded_missing_value": -2},
    {"handle_unknown": "use_encoded_value", "unknown_value": 99, "min_frequency": 2},
    {"handle_unknown": "use_encoded_value", "unknown_value": -1, "max_categories": 2},
    {
        "handle_unknown": "use_encoded_value",
        "unknown_value": -1,
        "min_frequency": 0.3,
        "max_categories": 3,
    },
    {
        "handle_unknown": "use_encoded_value",
        "unknown_value": -1,
        "categories": [["é/ü", "O'Brien", "a b", np.nan], [1, 3], [1.5, 2.0, np.nan], [True]],
    },
    {
        "handle_unknown": "use_encoded_value",
        "unknown_value": -1,
        "encoded_missing_value": -2,
        "dtype": np.int64,
    },
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("params", ORD_CASES, ids=lambda p: json.dumps(p, default=str))
def test_ordinal_matches_sklearn_on_a_second_split(path, params, session):
    test = TEST if params.get("handle_unknown") else KNOWN_TEST
    cols = CATS
    sk = skp.OrdinalEncoder(**params).fit(TRAIN[cols])
    step = OrdinalEncoder(input_cols=cols, **params)
    out = run(path, step, TRAIN, test, session)
    assert list(step.get_feature_names_out()) == list(sk.get_feature_names_out())
    assert_same(out[cols], sk_frame(sk, test[cols]))
    assert list(out.columns) == list(test.columns)
    if params.get("min_frequency") or params.get("max_categories"):
        got = step.infrequent_categories_
        for i, col in enumerate(cols):
            want = sk.infrequent_categories_[i]
            assert (got[col] is None) == (want is None)
            if want is not None:
                assert [str(v) for v in got[col]] == [str(v) for v in want]


@pytest.mark.parametrize("path", PATHS)
def test_ordinal_unknown_with_error_raises(path, session):
    step = OrdinalEncoder(input_cols=["n/level"])
    test = pd.DataFrame({"n/level": [1, 4]})
    if path == "pandas":
        with pytest.raises(UnknownCategoryError, match=r"'4' in column 'n/level'"):
            step.fit(TRAIN).transform(test)
    else:
        step.fit(session.create_table("TRAIN", TRAIN, overwrite=True))
        with pytest.raises(UnknownCategoryError, match=r"'4' in column 'n/level'"):
            step.transform(session.create_table("TEST", test, overwrite=True))


@pytest.mark.parametrize(
    "step",
    [OneHotEncoder(input_cols=["flag"]), OrdinalEncoder(input_cols=["flag"]), LabelEncoder(input_cols=["flag"])],
    ids=["onehot", "ordinal", "label"],
)
def test_lazy_unseen_null_is_a_neve_value_error_naming_null(step, session):
    train = session.create_table("TRAIN", TRAIN[["flag"]].dropna(), overwrite=True)
    step.fit(train)
    assert step.transform(train).count().execute() == len(TRAIN[["flag"]].dropna())  # the fit table passes
    test = session.create_table("TEST", pd.DataFrame({"flag": [True, None]}, dtype="boolean"), overwrite=True)
    with pytest.raises(ValueError, match=r"unknown category NULL in column 'flag'") as info:
        step.transform(test)
    assert isinstance(info.value, UnknownCategoryError)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("col", ["city name", "n/level", "score"])
def test_label_encoder_matches_sklearn(path, col, session):
    sk = skp.LabelEncoder().fit(TRAIN[col])
    step = LabelEncoder(input_cols=col)
    test = TRAIN.iloc[::-1].reset_index(drop=True)
    out = run(path, step, TRAIN, test, session)
    assert [str(v) for v in step.classes_by_col_[col]] == [str(v) for v in sk.classes_]
    assert out[col].tolist() == sk.transform(test[col]).tolist()
    assert str(out[col].dtype) == "int64"


def test_label_encoder_unseen_label_and_column_count():
    step = LabelEncoder(input_cols=["city name"], output_cols=["y"]).fit(TRAIN)
    with pytest.raises(UnknownCategoryError, match="'Ω' in column 'city name'"):
        step.transform(TEST)
    with pytest.raises(InvalidParameterError, match="exactly one column"):
        LabelEncoder().fit(TRAIN[["city name", "flag"]])
    assert LabelEncoder().fit(TRAIN[["flag"]]).classes_by_col_ == {"flag": [False, True]}


def test_fit_runs_one_query_for_three_columns_and_transform_none(session):
    t = session.create_table("TRAIN", TRAIN, overwrite=True)
    for step in (OneHotEncoder(input_cols=CATS[:3]), OrdinalEncoder(input_cols=CATS[:3])):
        with neve.capture_queries() as log:
            step.fit(t)
            lazy = step.transform(t)
        assert len(log) == 1
        assert "GROUP BY" in log.queries[0]
        assert session.execute(lazy).shape[0] == len(TRAIN)


def test_pipeline_state_round_trips_through_json(session):
    t = session.create_table("TRAIN", TRAIN, overwrite=True)
    pipe = Pipeline(
        [
            (
                "ohe",
                OneHotEncoder(
                    input_cols=["city name", "score"],
                    handle_unknown="infrequent_if_exist",
                    min_frequency=2,
                    drop="if_binary",
                    dtype=np.float32,
                ),
            ),
            (
                "ord",
                OrdinalEncoder(
                    input_cols=["n/level"],
                    output_cols=["lvl"],
                    encoded_missing_value=-1,
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                ),
            ),
            ("lab", LabelEncoder(input_cols=["flag"])),
        ]
    ).fit(t)
    state = json.loads(json.dumps(pipe.to_dict(), allow_nan=False))
    again = Pipeline.from_dict(state)
    assert again.to_dict() == pipe.to_dict()
    assert again["ohe"].get_params()["dtype"] is np.float32
    assert math.isnan(again["ohe"].categories_["score"][-1])
    te = session.create_table("TEST", TEST, overwrite=True)
    pd.testing.assert_frame_equal(
        session.execute(again.transform(te)), session.execute(pipe.transform(te))
    )
    assert list(again.get_feature_names_out()) == list(session.execute(pipe.transform(te)).columns)


def test_errors_name_the_culprit(session):
    with pytest.raises(
        ColumnNotFoundError, match=r"'nope' not found; available columns: 'city name', 'n/level'"
    ):
        OneHotEncoder(input_cols=["nope"]).fit(TRAIN)
    with pytest.raises(NotFittedError, match="not fitted"):
        OrdinalEncoder().transform(TRAIN)
    with pytest.raises(EmptyInputError):
        OneHotEncoder(input_cols=CATS).fit(TRAIN.iloc[:0])
    with pytest.raises(EmptyInputError):
        OrdinalEncoder(input_cols=["city name"]).fit(
            session.create_table("E", TRAIN.iloc[:0], overwrite=True)
        )
    bad = [
        (OneHotEncoder(handle_unknown="bogus"), "handle_unknown"),
        (OneHotEncoder(min_frequency=0), "min_frequency"),
        (OneHotEncoder(max_categories=0), "max_categories"),
        (OneHotEncoder(feature_name_combiner=lambda f, c: f), "feature_name_combiner"),
        (OneHotEncoder(dtype="not-a-dtype"), "dtype"),
        (OneHotEncoder(categories=[[1]]), "one list per column"),
        (OneHotEncoder(drop=["nope", 1]), "not found in the training data"),
        (OneHotEncoder(drop=["a b", 1], min_frequency=2), "infrequent"),
        (OneHotEncoder(categories=[["b", "a", "b"], [1]]), "duplicates"),
        (OneHotEncoder(categories=[["a"], [3, 1]]), "unsorted"),
        (
            OneHotEncoder(categories=[["a"], ["x"]], handle_unknown="ignore"),
            "does not match the type",
        ),
        (OrdinalEncoder(unknown_value=-1), "unknown_value should only be set"),
        (OrdinalEncoder(handle_unknown="use_encoded_value"), "integer or np.nan"),
        (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=1), "already used"),
        (OrdinalEncoder(encoded_missing_value=0), "encoded_missing_value"),
        (OrdinalEncoder(dtype=np.int64), "encoded_missing_value"),
    ]
    two = TRAIN[["city name", "n/level"]]
    for step, message in bad:
        with pytest.raises(InvalidParameterError, match=message):
            step.fit(two)
        assert isinstance(InvalidParameterError(), ValueError)
    dates = pd.DataFrame({"d": [dtm.date(2024, 1, 1)]})
    with pytest.raises(ColumnTypeError, match=r"'d' has type date"):
        OneHotEncoder().fit(dates)
    with pytest.raises(NeveInputError, match="'x' contains infinity"):
        OneHotEncoder().fit(pd.DataFrame({"x": [1.0, np.inf]}))
    with pytest.raises(ValueError):  # and scikit-learn agrees
        skp.OneHotEncoder().fit(pd.DataFrame({"x": [1.0, np.inf]}))


# --- hypothesis: random frames, fit on one, transform another ---------------

WORDS = st.sampled_from(["a", "b", "B", "", " ", *QUOTED, None])
INTS = st.sampled_from([-3, 0, 1, 2, 10])
FLOATS = st.sampled_from([-1.5, 0.0, 0.25, 3.0, np.nan])


@st.composite
def frames(draw):
    def frame(n):
        return pd.DataFrame(
            {
                "id": range(n),
                "s col": pd.Series(draw(st.lists(WORDS, min_size=n, max_size=n)), dtype="str"),
                "i/x": draw(st.lists(INTS, min_size=n, max_size=n)),
                "f": draw(st.lists(FLOATS, min_size=n, max_size=n)),
            }
        )

    return frame(draw(st.integers(1, 12))), frame(draw(st.integers(1, 6)))


INFREQUENT = st.fixed_dictionaries(
    {},
    optional={
        "min_frequency": st.one_of(st.integers(1, 4), st.floats(0.05, 0.6)),
        "max_categories": st.integers(1, 4),
    },
)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    data=frames(),
    infrequent=INFREQUENT,
    unknown=st.sampled_from(["ignore", "infrequent_if_exist"]),
    drop=st.sampled_from([None, "first", "if_binary"]),
)
def test_onehot_hypothesis(data, infrequent, unknown, drop):
    train, test = data
    params = {"handle_unknown": unknown, "drop": drop, **infrequent}
    sk = skp.OneHotEncoder(sparse_output=False, **params).fit(train.drop(columns="id"))
    step = OneHotEncoder(passthrough_cols=["id"], **params).fit(train)
    names = list(sk.get_feature_names_out())  # may be empty: "id" keeps the table non-empty
    out = step.transform(test)
    assert list(out.columns) == ["id", *names]
    assert_same(out[names], sk_frame(sk, test.drop(columns="id")))


@FAST
@given(data=frames(), infrequent=INFREQUENT)
def test_ordinal_hypothesis(data, infrequent):
    train, test = data
    params = {"handle_unknown": "use_encoded_value", "unknown_value": -1, **infrequent}
    sk = skp.OrdinalEncoder(**params).fit(train.drop(columns="id"))
    step = OrdinalEncoder(passthrough_cols="id", **params).fit(train)
    assert_same(step.transform(test).drop(columns="id"), sk_frame(sk, test.drop(columns="id")))


CASED = pd.DataFrame({"k": ["A", "a", "b", "a", "A", "b", "a_2"], "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})


def test_one_hot_names_that_differ_only_by_case(session, engine):
    """Categories ``A`` and ``a`` make ``K_A`` and ``K_a``. Where the engine ignores case in
    names (DuckDB) they would be one column to any query: the fit names the later one
    ``K_a_2`` (the next free number: ``K_a_2`` is taken by category ``a_2``, so ``K_a_3``),
    warns naming the categories, and every name it reports is a column the engine returns.
    Engines with exact names keep scikit-learn's names."""
    import warnings

    table = session.create_table("CASED", CASED, overwrite=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc = OneHotEncoder(input_cols=["k"], output_cols=["K"]).fit(table)
    names = list(enc.get_feature_names_out())
    sk = skp.OneHotEncoder(sparse_output=False).fit(CASED[["k"]])
    sk_names = [f"K_{c}" for c in sk.categories_[0]]
    assert sk_names == ["K_A", "K_a", "K_a_2", "K_b"]
    if engine == "duckdb":
        assert names == ["K_A", "K_a_3", "K_a_2", "K_b"]
        (warning,) = [w for w in caught if "differ only by case" in str(w.message)]
        assert "category 'a' ('A', 'a' differ only by case) is column 'K_a_3', not 'K_a'" in str(warning.message)
    else:
        assert names == sk_names and not [w for w in caught if "differ only by case" in str(w.message)]
    out = enc.transform(table).to_pandas().sort_values("x")  # every column selected: no name clash
    assert [c for c in out.columns if c.startswith("K_")] == names
    np.testing.assert_array_equal(out[names].to_numpy(), sk.transform(CASED[["k"]]))
    # A later step finds the renamed column by its name; the saved state keeps the names.
    again = type(enc)._from_dict(json.loads(json.dumps(enc.to_dict())))
    assert list(again.get_feature_names_out()) == names
    pipe = Pipeline([("ohe", enc), ("mm", neve.preprocessing.MinMaxScaler(input_cols=names[:2]))]).fit(table)
    assert list(pipe.transform(table).to_pandas().sort_values("x")[names[1]]) == list(out[names[1]])


def test_one_hot_names_on_pandas_input_are_scikit_learns():
    enc = OneHotEncoder(input_cols=["k"], output_cols=["K"]).fit(CASED)
    assert list(enc.get_feature_names_out()) == ["K_A", "K_a", "K_a_2", "K_b"]
    assert list(enc.transform(CASED).columns)[-4:] == ["K_A", "K_a", "K_a_2", "K_b"]
