"""Registry writers in several processes over one Spark Connect server (one catalog).

Spark's Parquet tables enforce no keys, so a version name is claimed through the event log
(neve/registry/_claim.py). Measured before that claim existed, with the same workload
(3 processes, each claiming ``best`` and logging 4 versions): 10 acknowledged logs held 5
distinct names (v1..v4 each committed twice or three times, ``best`` twice), manifests
were overwritten by the second writer, and 3 of the 15 appends failed outright because
concurrent jobs shared one ``_temporary`` staging folder."""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path

import pytest

import neve
from tests.registry import _workers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.engines("spark", reason="Spark's claim protocol, over a Spark Connect server"),
]


def test_processes_claiming_names_over_spark_connect_get_each_once(spark_connect_url: str, tmp_path: Path) -> None:
    url = f"{spark_connect_url}/?database=w_{uuid.uuid4().hex[:10]}"
    stage = str(tmp_path / "stage")
    reg = neve.Registry(url, stage=stage)  # tables exist before the race, as in production
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_workers.log_on_spark_connect, [(url, stage, w, 3) for w in range(3)])

    logged = [name for r in results for name in r["logged"]]
    assert len(logged) == len(set(logged)) == 9
    shown = reg.get_model("shared").show_versions()
    assert sorted(shown.version_name) == sorted(logged)  # every acknowledged log, once
    pairs = set(zip(shown.worker.astype(int), shown.i.astype(int), strict=True))
    assert pairs == {(w, i) for w in range(3) for i in range(3)}

    # One writer got "best"; the others were refused, naming it.
    winners = [r["named"] for r in results if r["named"]]
    assert winners == ["best"]
    assert all("'best'" in msg for r in results for msg in r["refused"])
    assert len([msg for r in results for msg in r["refused"]]) == 2
    best = reg.get_model("named").show_versions()
    assert list(best.version_name) == ["best"]
    assert int(best.worker.iloc[0]) == next(w for w, r in enumerate(results) if r["named"])

    report = reg.check(older_than=0)
    assert report.ok, report.problems
    reg.get_model("shared").version(logged[0]).load()  # files intact (the check hashed them all)
