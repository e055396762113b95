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
    │   └── InvalidParameterError           a constructor parameter is out of range
    ├── NotFittedError(ValueError, AttributeError)   transform or state access before fit
    ├── SerializationError(ValueError)      fitted state that cannot be written or read back
    └── EngineError(RuntimeError)           the engine could not be reached or used
        ├── InvalidURLError(ValueError)     a connection URL neve cannot parse
        ├── ConnectionNotFoundError(LookupError) a named (Airflow) connection that is not defined
        └── EngineLockedError(TimeoutError) another process held a DuckDB file too long
"""

from __future__ import annotations

__all__ = [
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


class NotFittedError(NeveError, ValueError, AttributeError):
    """The estimator was used before ``fit``."""


class SerializationError(NeveError, ValueError):
    """Fitted state could not be serialised to, or restored from, plain JSON."""


class EngineError(NeveError, RuntimeError):
    """The engine could not be reached, or refused the operation."""


class InvalidURLError(EngineError, ValueError):
    """A connection URL neve cannot interpret."""


class ConnectionNotFoundError(EngineError, LookupError):
    """A named connection (``airflow_conn_id``) is not defined; the message says how to define it."""


class EngineLockedError(EngineError, TimeoutError):
    """Another process kept the DuckDB file locked past the configured timeout."""
