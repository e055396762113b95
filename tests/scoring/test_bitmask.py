"""The bitmask form's size limit: past ``MAX_MASK_ENTRIES`` mask constants DuckDB gets the
nested CASE form instead, and predictions are the same either way."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from neve.scoring import _bitmask, score


@pytest.mark.engines("duckdb", reason="the bitmask form is DuckDB's")
@pytest.mark.parametrize("limit", [0, 10**9])
def test_size_limit_picks_the_form_and_predictions_agree(session, data, limit, monkeypatch):
    monkeypatch.setattr(_bitmask, "MAX_MASK_ENTRIES", limit)
    model = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0)
    model.fit(data["X_nan"], data["y"])
    table = session.create_table("F", data["X_nan"].assign(ROW_ID=np.arange(len(data["y"]))))
    result = score(table, model)
    sql = session.to_sql(result)
    assert ("__neve_word" in sql) == (limit > 0)
    got = result.execute().sort_values("ROW_ID")["PREDICTION"].to_numpy()
    np.testing.assert_array_equal(got, model.predict(data["X_nan"]))
