"""``Registry.check`` and ``neve registry check``: each kind of damage found, named, and only
what gc may do repaired."""

from __future__ import annotations

from pathlib import Path

import pytest

from neve.cli import main
from neve.registry import _tables


@pytest.fixture
def two_versions(reg, fitted):
    model, X = fitted
    reg.log_model(model, "m", sample_input=X.head(3), metrics={"mse": 1.0}, tags={"team": "a"})
    reg.log_model(model, "m")
    reg.get_model("m").set_alias("production", "v1")
    return reg


def kinds(report) -> list[tuple[str, str | None, str | None]]:
    return sorted((p.kind, p.model, p.version) for p in report.problems)


def test_a_healthy_registry_is_clean(two_versions):
    report = two_versions.check(older_than=0)
    assert report.ok, str(report)
    assert report.versions_checked == 2 and report.folders_checked == 2
    # v1: manifest's files are model.skops, model.json, sample_input.parquet; v2 the first two.
    assert report.files_checked == 5
    assert "no problems" in str(report)


@pytest.mark.parametrize("name", ["model.skops", "sample_input.parquet", "manifest.json"])
def test_a_flipped_bit_in_any_file_is_found(two_versions, name):
    path = Path(two_versions.stage.path("m", "v1")) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = two_versions.check()
    kind = "bad-manifest" if name == "manifest.json" else "bad-file"
    assert kinds(report) == [(kind, "m", "v1")]
    assert name in str(report)


def test_missing_and_stray_files_are_found(two_versions):
    folder = Path(two_versions.stage.path("m", "v2"))
    (folder / "model.json").unlink()
    (folder / "extra.bin").write_bytes(b"?")
    report = two_versions.check()
    assert kinds(report) == [("bad-file", "m", "v2"), ("stray-file", "m", "v2")]
    assert "model.json is missing" in str(report) and "extra.bin" in str(report)


def test_a_missing_version_folder_is_found(two_versions):
    import shutil

    shutil.rmtree(two_versions.stage.path("m", "v2"))
    assert kinds(two_versions.check()) == [("bad-manifest", "m", "v2")]


def test_an_orphaned_folder_counts_only_past_the_grace_and_repair_removes_it(two_versions):
    stray = Path(two_versions.stage.path("ghost", "v9"))
    stray.mkdir(parents=True)
    (stray / "model.skops").write_bytes(b"x")
    assert two_versions.check().ok  # young: a writer may be filling it
    report = two_versions.check(older_than=0)
    assert kinds(report) == [("orphan-folder", "ghost", "v9")]
    assert "no version row claims it" in str(report)
    repaired = two_versions.check(older_than=0, repair=True)
    assert repaired.ok and repaired.repaired == [str(stray)]
    assert not stray.exists()


def test_a_deleted_versions_leftover_folder_is_found(two_versions, fitted):
    model = two_versions.get_model("m")
    folder = Path(two_versions.stage.path("m", "v2"))
    saved = {p.name: p.read_bytes() for p in folder.iterdir()}
    model.delete_version("v2")
    folder.mkdir()  # as if the deleting process died between its event and the removal
    for name, data in saved.items():
        (folder / name).write_bytes(data)
    report = two_versions.check(older_than=0)
    assert kinds(report) == [("orphan-folder", "m", "v2")]
    assert "its version was deleted" in str(report)


def test_an_abandoned_reservation_is_found_and_gc_repairs_it(two_versions, fitted):
    reg = two_versions
    reg._reserve("m", "crashed", "sklearn", {}, {})  # what a writer killed after reserving leaves
    reg.stage.write("m", "crashed", {"model.skops": b"half"})
    assert reg.check().ok  # within the grace it may still be in progress
    report = reg.check(older_than=0)
    assert kinds(report) == [("abandoned-reservation", "m", "crashed"), ("orphan-folder", "m", "crashed")]
    repaired = reg.check(older_than=0, repair=True)
    assert repaired.ok, str(repaired)
    assert repaired.repaired == [reg.stage.path("m", "crashed")]


def test_alias_to_a_version_never_committed_is_found(two_versions):
    reg = two_versions
    reg._append([("m", "v7", _tables.ALIAS, "staging", None, "v7")])
    report = reg.check()
    assert ("dangling-alias", "m", "v7") in kinds(report)
    assert "alias 'staging'" in str(report)


def test_alias_of_a_deleted_version_is_only_a_note(two_versions):
    two_versions.get_model("m").delete_version("v1")
    report = two_versions.check(older_than=0)
    assert report.ok, str(report)
    assert any("'production'" in n and "deleted" in n for n in report.notes)


def test_rows_and_events_that_disagree_are_found(two_versions):
    reg = two_versions
    live = reg._query(lambda s, p: s.live_versions())  # in no set order on Spark
    sha = live.set_index("VERSION_NAME").loc["v2", "MANIFEST_SHA256"]
    reg._append([("m", "v2", _tables.COMMIT, None, None, sha)])  # a second claim of v2
    reg._append([("m", "v99", _tables.METRIC, "mse", 1.0, None)])  # no such row
    reg._reserve("m", "pending", "sklearn", {}, {})
    reg._append([("m", "pending", _tables.TAG, "k", None, "v")])  # tag before any commit
    reg._append([("nomodel", None, _tables.TAG, "k", None, "v")])
    reg._append([("m", "v1", "retrain", None, None, None)])  # a kind no neve writes
    report = reg.check()
    assert kinds(report) == [
        ("duplicate-commit", "m", "v2"),
        ("orphan-events", "m", "v99"),
        ("orphan-events", "nomodel", None),
        ("uncommitted-events", "m", "pending"),
        ("unknown-event", "m", "v1"),
    ]
    # The messages name the kinds of event found.
    messages = {(p.kind, p.version): p.message for p in report.problems}
    assert messages["duplicate-commit", "v2"].endswith("was committed 2 times: two writers claimed one name")
    assert messages["orphan-events", "v99"].endswith("has metric events but no version row")
    assert messages["uncommitted-events", "pending"].endswith("was never committed yet has tag events")
    assert messages["unknown-event", "v1"].endswith("has events of unknown kind ['retrain']")


def test_cli_exits_non_zero_listing_the_problems(two_versions, engine_url, capsys):
    at = ["--url", engine_url, "--stage", two_versions.stage.url]
    assert main(["registry", "check", *at]) == 0
    assert "2 live version(s)" in capsys.readouterr().out
    (Path(two_versions.stage.path("m", "v1")) / "model.skops").write_bytes(b"tampered")
    stray = Path(two_versions.stage.path("m", "v5"))
    stray.mkdir()
    assert main(["registry", "check", "--older-than", "0", *at]) == 4
    out = capsys.readouterr().out
    assert "2 problem(s)" in out and "model.skops does not match" in out and "m/v5" in out
    # --repair removes the orphan (gc's job) but leaves the damaged file for a person.
    assert main(["registry", "check", "--older-than", "0", "--repair", *at]) == 4
    out = capsys.readouterr().out
    assert "1 problem(s)" in out and f"repaired: {stray}" in out
    assert not stray.exists()
    assert (Path(two_versions.stage.path("m", "v1")) / "model.skops").read_bytes() == b"tampered"
