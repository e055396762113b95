"""The names of the registry's tables, views and event kinds, and its schema version.

Kept apart from :mod:`neve.registry._tables` (which builds the DDL and the folds with
Ibis) so that readers on a plain DB-API cursor (:mod:`neve.registry._browse`) can name
them without importing Ibis.
"""

from __future__ import annotations

__all__ = [
    "ALIASES_VIEW", "COMMENTS_VIEW", "EVENTS", "KINDS", "LIVE_VIEW", "META", "METRICS_VIEW", "MODELS",
    "SCHEMA_VERSION", "TAGS_VIEW", "VERSIONS",
]

SCHEMA_VERSION = 1

META = "NEVE_META"
MODELS = "NEVE_MODELS"
VERSIONS = "NEVE_MODEL_VERSIONS"
EVENTS = "NEVE_EVENTS"

# Views that fold the event log into current values (defined in _tables.VIEWS).
LIVE_VIEW = "NEVE_LIVE_VERSIONS"
METRICS_VIEW = "NEVE_CURRENT_METRICS"
TAGS_VIEW = "NEVE_CURRENT_TAGS"
ALIASES_VIEW = "NEVE_CURRENT_ALIASES"
COMMENTS_VIEW = "NEVE_CURRENT_COMMENTS"

# Event kinds. A version is visible once it has a COMMIT and no DELETE. DRIFT keeps a
# drift report (JSON) computed against the version's baseline, when the caller records it.
COMMIT, METRIC, TAG, UNTAG, ALIAS, UNALIAS, COMMENT, DELETE, DRIFT = (
    "commit", "metric", "tag", "untag", "alias", "unalias", "comment", "delete", "drift"
)
# A version name claimed and released again, on engines without keys (see _claim).
CLAIM, RELEASE = "claim", "release"
KINDS = (COMMIT, METRIC, TAG, UNTAG, ALIAS, UNALIAS, COMMENT, DELETE, DRIFT, CLAIM, RELEASE)
