"""TableRef and ModelVersionRef: small JSON through XCom, back to refs on the way in."""

from __future__ import annotations

import copy
import json
import pickle

import pandas as pd
import pytest

import neve
from neve.airflow import ModelVersionRef, TableRef, from_json_ref
from neve.errors import NeveInputError


def through_xcom(value):
    """What a downstream task receives: Airflow's serde, stored as JSON text, read back."""
    from airflow.sdk.serde import deserialize, serialize

    return deserialize(json.loads(json.dumps(serialize(value))))


def test_table_ref_crosses_xcom_as_plain_json_and_comes_back():
    ref = TableRef("TAXI_DATA", rows=19_824)
    stored = json.loads(json.dumps(__import__("airflow.sdk.serde", fromlist=["serialize"]).serialize(ref)))
    assert stored == {"kind": "neve.table/1", "name": "TAXI_DATA", "rows": 19_824}
    received = through_xcom(ref)
    assert type(received) is dict  # plain JSON: no class name for serde to allow-list
    back = from_json_ref(received)
    assert isinstance(back, TableRef) and back == ref and back.name == "TAXI_DATA" and back.rows == 19_824


def test_nested_refs_are_restored_inside_containers():
    payload = {"features": TableRef("F"), "raw": [TableRef("A"), TableRef("B")], "n": 3,
               "model": ModelVersionRef("neve", "m", "v1", metrics={"r2": 0.7})}
    back = from_json_ref(through_xcom(payload))
    assert isinstance(back["features"], TableRef)
    assert [type(r) for r in back["raw"]] == [TableRef, TableRef]
    assert isinstance(back["model"], ModelVersionRef) and back["model"].metrics == {"r2": 0.7}
    assert back["n"] == 3


def test_refs_survive_copy_and_pickle_as_their_class():
    ref = ModelVersionRef("reg", "m", "v3", tags={"stage": "dev"}, aliases=["prod"])
    for clone in (copy.deepcopy(ref), pickle.loads(pickle.dumps(ref))):
        assert isinstance(clone, ModelVersionRef) and clone == ref


def test_model_version_ref_names_its_asset():
    assert ModelVersionRef("neve", "trip_duration_estimator", "v1").asset_uri == "neve://neve/trip_duration_estimator"


def test_refs_are_read_only():
    with pytest.raises(AttributeError):
        TableRef("T").name = "U"


def test_table_ref_of_counts_rows_and_table_reads_them(tmp_path):
    with neve.connect(f"duckdb://{tmp_path / 'r.duckdb'}") as session:
        session.create_table("T", pd.DataFrame({"a": [1, 2, 3]}))
        ref = TableRef.of(session, "T")
        assert ref.rows == 3
        assert ref.table(session).a.sum().execute() == 6


@pytest.mark.parametrize("bad", [{"kind": "something/1", "name": "T"}, ["T"], "T"])
def test_from_dict_refuses_what_is_not_a_ref(bad):
    with pytest.raises(NeveInputError, match="expected a TableRef"):
        TableRef.from_dict(bad)


def test_table_ref_needs_a_name():
    with pytest.raises(NeveInputError, match="table name"):
        TableRef("")
