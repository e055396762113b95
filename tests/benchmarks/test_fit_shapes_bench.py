"""The fit-by-shape benchmark on tiny tables: every shape measured on all three sides, the
section written, and neve's fit one statistics query over the generated table."""

from __future__ import annotations

from benchmarks import fit_shapes


def test_a_tiny_run_measures_every_shape_and_writes_the_section(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    assert fit_shapes.main(["--rows", "3000", "--workdir", str(tmp_path), "--output", str(out)]) == 0
    text = out.read_text()
    assert "## Fit by table shape" in text
    for shape in ("taxi", "independent", "wide", "numeric"):
        row = next(line for line in text.splitlines() if line.startswith(f"| 3,000 | {shape} |"))
        assert "1 + " in row and "survey" in row, row  # one statistics query, and its survey
    assert "LogisticRegression" in text and "| 3,000 | wide |" in text.split("LogisticRegression")[-1]


def test_the_floor_for_independent_columns_is_the_blocks_a_person_would_write():
    queries = fit_shapes.floor_sql(fit_shapes._shapes.shape("independent"), "T")
    assert len(queries) == 3 and "GROUPING SETS ((C0, C1), (C0, C2), (C1, C2))" in queries[0]
