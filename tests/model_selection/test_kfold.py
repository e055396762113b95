"""KFold in SQL: each row's fold is a portable hash of its key, the same on every engine."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import neve
from neve.errors import ColumnNotFoundError, InvalidParameterError
from neve.model_selection import KFold, train_test_split


def reference_folds(ids, n_splits: int, seed: int) -> np.ndarray:
    """The documented rule, from Python's hashlib: floor(n · md5₃₂("kfold<seed>|<id>") / 2³²)."""
    return np.array([int(hashlib.md5(f"kfold{seed}|{i}".encode()).hexdigest()[:8], 16) * n_splits // 2**32
                     for i in ids])


def _frame(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"ID": np.arange(n), "G": rng.choice(["x", "y", "é"], n), "V": rng.normal(size=n)})


def test_fold_column_is_the_documented_hash_on_every_engine(session: neve.Session) -> None:
    table = session.create_table("T", _frame())
    folds = session.execute(KFold(5, random_state=42, key="ID").assign(table)).sort_values("ID")
    assert folds["FOLD"].tolist() == reference_folds(range(3000), 5, 42).tolist()


def test_split_yields_disjoint_lazy_sides_covering_the_table(session: neve.Session) -> None:
    table = session.create_table("T", _frame())
    seen = []
    for train, test in KFold(4, random_state=1, key="ID").split(table):
        train_ids = set(session.execute(train.select("ID"))["ID"])
        test_ids = set(session.execute(test.select("ID"))["ID"])
        assert not train_ids & test_ids and len(train_ids | test_ids) == 3000
        assert 0.2 < len(test_ids) / 3000 < 0.3
        seen.append(test_ids)
    assert set().union(*seen) == set(range(3000)) and sum(map(len, seen)) == 3000


def test_folds_follow_the_data_not_the_row_order_and_the_seed_changes_them() -> None:
    session = neve.connect("duckdb://")
    frame = _frame(500)
    a = session.execute(KFold(3, random_state=7).assign(session.create_table("A", frame))).sort_values("ID")
    b = session.execute(KFold(3, random_state=7).assign(
        session.create_table("B", frame.sample(frac=1.0, random_state=1)))).sort_values("ID")
    c = session.execute(KFold(3, random_state=8).assign(session.create_table("C", frame))).sort_values("ID")
    assert a["FOLD"].tolist() == b["FOLD"].tolist()
    assert a["FOLD"].tolist() != c["FOLD"].tolist()


def test_cross_validating_a_training_side_with_the_same_seed_finds_every_fold() -> None:
    # Unsalted, the test side of a 20% split is exactly fold 0 of 5: the train side's fold 0 is empty.
    session = neve.connect("duckdb://")
    train, _ = train_test_split(session.create_table("T", _frame()), test_size=0.2, random_state=42, key="ID")
    counts = session.execute(KFold(5, random_state=42, key="ID").assign(train)).FOLD.value_counts()
    assert sorted(counts.index) == [0, 1, 2, 3, 4] and counts.min() > 350


def test_assign_keeps_pandas_as_pandas_and_exposes_the_assignment_for_a_predefined_split() -> None:
    frame = _frame(200)
    out = KFold(3, random_state=0, key="ID").assign(frame, name="F")
    assert isinstance(out, pd.DataFrame) and out.index.equals(frame.index)
    assert out["F"].tolist() == reference_folds(frame.ID, 3, 0).tolist()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_splits": 1}, "n_splits must be an integer of at least 2"),
    ({"n_splits": 2.5}, "n_splits must be an integer"),
    ({"shuffle": False, "random_state": 3}, "random_state has no effect since shuffle is False"),
    ({"random_state": 1.5}, "random_state must be an integer"),
])
def test_bad_parameters_are_refused_before_any_query(kwargs, match) -> None:
    session = neve.connect("duckdb://")
    table = session.create_table("T", _frame(10))
    with neve.capture_queries() as log, pytest.raises(InvalidParameterError, match=match):
        KFold(**kwargs).fold_of(table)
    assert len(log) == 0


def test_unknown_key_column_is_named() -> None:
    table = neve.connect("duckdb://").create_table("T", _frame(10))
    with pytest.raises(ColumnNotFoundError, match="'IDD'"):
        KFold(key="IDD").fold_of(table)


def test_assign_refuses_to_overwrite_a_column() -> None:
    with pytest.raises(InvalidParameterError, match="already has a column 'ID'"):
        KFold().assign(_frame(10), name="ID")
