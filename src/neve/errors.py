"""The exceptions neve raises.

Every error derives from :class:`NeveError`; each domain error also inherits
the builtin a caller would naturally catch, so ``except ValueError`` keeps
working for code that does not know about neve::

    NeveError
    ├── NeveInputError(ValueError)          bad data or bad arguments from the caller
    │   ├── ColumnNotFoundError(KeyError)   a column the step needs is not in the table
    │   ├── ColumnTypeError(TypeError)      a column has the wrong type for the step
    │   ├── TableNotFoundError(LookupError) a table that does not exist in the session
    │   ├── EmptyInputError                 fit was given a table with no rows
    │   ├── UnknownCategoryError            a category unseen at fit, with handle_unknown="error"
    │   ├── DataFileError(FileNotFoundError) a data file that is missing or cannot be parsed
    │   ├── InvalidParameterError           a constructor parameter is out of range
    │   ├── InvalidNameError                a model/version/alias/tag name neve will not store
    │   ├── ModelNotFoundError(LookupError) an unknown model, version or alias; suggests close names
    │   └── DuplicateVersionError           a version name the model already has
    ├── NotFittedError(ValueError, AttributeError)   transform or state access before fit
    ├── SerializationError(ValueError)      fitted state that cannot be written or read back
    ├── DriftError(ValueError)              scoring data drifted from the training baseline
    ├── ArtifactError(ValueError)           a stored model file that is tampered, missing or untrusted
    │   └── ArtifactMissingError(FileNotFoundError)  a file the manifest lists is gone
    └── EngineError(RuntimeError)           the engine could not be reached or used
        ├── InvalidURLError(ValueError)     a connection URL neve cannot parse
        ├── ConnectionNotFoundError(LookupError) a named (Airflow) connection that is not defined
        ├── StageWriteError(OSError)        a version's files could not be written (disk full, upload cut)
        └── EngineLockedError(TimeoutError) another process held a DuckDB file too long
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ArtifactMissingError",
    "DriftError",
    "DuplicateVersionError",
    "InvalidNameError",
    "ModelNotFoundError",
    "ColumnNotFoundError",
    "ColumnTypeError",
    "ConnectionNotFoundError",
    "DataFileError",
    "EmptyInputError",
    "EngineError",
    "EngineLockedError",
    "InvalidParameterError",
    "InvalidURLError",
    "NeveError",
    "NeveInputError",
    "NotFittedError",
    "SerializationError",
    "StageWriteError",
    "TableNotFoundError",
    "UnknownCategoryError",
]


class NeveError(Exception):
    """Root of every exception neve raises."""


class NeveInputError(NeveError, ValueError):
    """The caller passed data or arguments neve cannot use."""


class ColumnNotFoundError(NeveInputError, KeyError):
    """A required column is missing; the message lists the available ones."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else ""


class AmbiguousColumnError(ColumnNotFoundError):
    """A column name matches more than one column under the engine's identifier rules (two
    names differing only by case, on an engine that ignores case); the message names them."""


class ColumnTypeError(NeveInputError, TypeError):
    """A column's type does not suit the step (e.g. a string given to a scaler)."""


class TableNotFoundError(NeveInputError, LookupError):
    """A table name that does not exist; the message suggests close names."""


class EmptyInputError(NeveInputError):
    """``fit`` was given a table without rows."""


class UnknownCategoryError(NeveInputError):
    """A category not seen during ``fit`` met ``handle_unknown="error"``."""


class DataFileError(NeveInputError, FileNotFoundError):
    """A file given to ``load_files`` is missing or cannot be parsed."""


class InvalidParameterError(NeveInputError):
    """A constructor parameter has an invalid value."""


class InvalidNameError(NeveInputError):
    """A model, version, alias or key name with characters neve refuses to store."""


class ModelNotFoundError(NeveInputError, LookupError):
    """An unknown model, version or alias; the message suggests close names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DuplicateVersionError(NeveInputError):
    """``log_model`` was given a version name the model already has."""


class NotFittedError(NeveError, ValueError, AttributeError):
    """The estimator was used before ``fit``."""


class DriftError(NeveError, ValueError):
    """Data drifted past the thresholds; ``.report`` holds the :class:`~neve.monitoring.DriftReport`."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class SerializationError(NeveError, ValueError):
    """Fitted state could not be serialised to, or restored from, plain JSON."""


class ArtifactError(NeveError, ValueError):
    """A model artifact failed verification: a hash mismatch, or a type outside the trusted list."""


class ArtifactMissingError(ArtifactError, FileNotFoundError):
    """A file listed in a model version's manifest is missing from the stage."""


class EngineError(NeveError, RuntimeError):
    """The engine could not be reached, or refused the operation."""


class StageWriteError(EngineError, OSError):
    """A model version's files could not be written to the stage (a full disk, a store that
    refused or broke off an upload). The version was not logged; retrying is safe."""


class InvalidURLError(EngineError, ValueError):
    """A connection URL neve cannot interpret."""


class ConnectionNotFoundError(EngineError, LookupError):
    """A named connection (``airflow_conn_id``) is not defined; the message says how to define it."""


class EngineLockedError(EngineError, TimeoutError):
    """Another process kept the DuckDB file locked past the configured timeout."""
