"""The version page of a model chosen by cross-validation: every candidate with mean ± std
per scorer, best rank first, the chosen one marked."""

from __future__ import annotations

import re

import pytest

from tests.airflow.ui.test_app import rows, text


@pytest.fixture
def searched(tmp_path) -> tuple[str, object]:
    """A registry holding one GridSearchCV (Ridge over 7 alphas and LinearRegression, 5 folds,
    two scorers) and one plain version."""
    import neve
    from tests.registry.test_log_search import _frame, _model, _pipeline, _search

    url = f"duckdb://{tmp_path / 'cv.duckdb'}"
    with neve.connect(url) as session:
        table = session.create_table("TRAIN", _frame(300))
        search = _search().fit(table)
        reg = neve.Registry(session)
        reg.log_model(search, model_name="cv")
        reg.log_model(_pipeline(_model()).fit(table), model_name="cv")
    return url, search


def test_version_page_shows_every_candidate_with_mean_and_std_and_marks_the_chosen(searched, client_for, as_viewer):
    url, search = searched
    response = client_for(url).get("/models/cv/versions/v1", headers=as_viewer)
    assert response.status_code == 200
    page = text(response)
    assert "Cross-validation" in page
    assert "GridSearchCV: 8 candidates, 5 folds, chosen by neg_mean_squared_error" in page
    header = re.search(r'<table id="candidates">\s*<thead>(.*?)</thead>', response.text, flags=re.S).group(1)
    assert "neg_mean_squared_error" in header and ">r2<" in header
    found = rows(response, "candidates")
    assert len(found) == 8
    results, best = search.cv_results_, search.best_index_
    ranks = results["rank_test_neg_mean_squared_error"]
    assert [int(r.split()[0]) for r in found] == sorted(ranks.tolist())
    chosen = [r for r in found if r.endswith("chosen")]
    assert chosen == [found[0]]  # best rank first, and the only one marked
    for scorer in ("neg_mean_squared_error", "r2"):
        mean, std = results[f"mean_test_{scorer}"][best], results[f"std_test_{scorer}"][best]
        assert f"{mean:.4g} ± {std:.4g}" in chosen[0]
    model = type(search.best_params_["model"]).__name__
    assert f"model={model}" in chosen[0]
    if "model__alpha" in search.best_params_:
        assert f"model__alpha={search.best_params_['model__alpha']:.4g}" in chosen[0]
    assert any(r.startswith(f"{ranks.max()} ") and "model=" in r for r in found)
    assert 'class="chosen"' in response.text


def test_a_version_not_chosen_by_a_search_has_no_candidates_table(searched, client_for, as_viewer):
    url, _ = searched
    response = client_for(url).get("/models/cv/versions/v2", headers=as_viewer)
    assert response.status_code == 200 and 'id="candidates"' not in response.text
