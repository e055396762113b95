"""The narrow interface between a Session and one kind of engine.

A driver opens the Ibis backend for a URL and implements the few operations
whose best form differs per engine (bulk file loading, raising an error from
inside a query). Everything else goes through Ibis unchanged, so engine quirks
live here, in one small module per engine, and nowhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlglot.expressions as sge

from neve.engine._url import EngineURL
from neve.errors import AmbiguousColumnError, DataFileError, NeveInputError

__all__ = ["Driver", "check_files", "values_insert"]


#: What the native CSV readers (DuckDB's, Spark's) take for missing: an unquoted empty cell,
#: nothing else. pyarrow's default also reads ``NaN``, ``NA``, ``null``, ``N/A``... as NULL,
#: which would turn a NaN value into a missing one on the engines that load through it.
CSV_CELLS = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)


def check_files(paths: Sequence[str | Path]) -> list[Path]:
    """Resolve ``paths``, failing on the first one that does not exist."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    resolved = [Path(p).expanduser() for p in paths]
    if not resolved:
        raise DataFileError("load_files needs at least one file")
    for path in resolved:
        if not path.is_file():
            raise DataFileError(f"data file not found: {path}")
        if path.suffix.lower() not in {".csv", ".parquet", ".pq", ".gz", ".zst"}:
            raise DataFileError(f"{path}: only CSV and Parquet files can be loaded")
    return resolved


def values_insert(
    dialect: str,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    mark: str,
    database: str | None = None,
) -> tuple[str, list[Any]]:
    """One multi-row ``INSERT ... VALUES`` with a ``mark`` placeholder per value, and the
    flattened values to bind: one atomic statement, no value ever spliced into SQL."""
    target = sge.table_(table, db=database, quoted=True).sql(dialect)
    names = ", ".join(sge.to_identifier(c, quoted=True).sql(dialect) for c in columns)
    if mark == "%s":  # pyformat reads every % as a placeholder: one in an identifier is doubled
        target, names = target.replace("%", "%%"), names.replace("%", "%%")
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    sql = f"INSERT INTO {target} ({names}) VALUES " + ", ".join([row] * len(rows))
    return sql, [value for r in rows for value in r]


def unquote(name: str) -> str | None:
    """The identifier inside ``"..."`` (with ``""`` read as one quote), or ``None`` when
    ``name`` is not wrapped in double quotes."""
    if len(name) > 1 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return None


def quote(name: str) -> str:
    """``name`` as a quoted identifier, as :func:`unquote` reads it back."""
    return '"' + name.replace('"', '""') + '"'


@ibis.udf.scalar.builtin(name="md5")
def _md5(text: str) -> str:
    """The MD5 digest of ``text`` as 32 lowercase hex digits; every SQL engine neve supports has it."""


_HEX_DIGITS = "0123456789abcdef"


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


class Driver:
    """Defaults that work on any Ibis backend; subclasses override what their engine does better."""

    name: ClassVar[str] = "generic"
    schemes: ClassVar[tuple[str, ...]] = ()
    #: Whether the engine enforces PRIMARY KEY constraints (and accepts them in DDL). Where
    #: it does not, concurrent writers can claim the same key: see the registry's notes.
    enforces_keys: ClassVar[bool] = True
    #: How compiled tree ensembles are rendered for this engine (``neve.scoring``):
    #: ``"case"``, a nested CASE per tree, which every SQL engine runs; or
    #: ``"bitmask"``, per-feature bins and packed leaf bitmasks, where measured faster.
    tree_scoring: ClassVar[str] = "case"
    #: Whether the engine takes ``WITH x AS [NOT] MATERIALIZED (...)``: a fit's statistics
    #: query then says whether its projection, read by three branches, is computed once.
    cte_materialization: ClassVar[bool] = False

    def __init__(self, url: EngineURL) -> None:
        self.url = url

    def connect(self) -> Any:
        raise NotImplementedError

    def connect_briefly(self) -> Any:
        """A connection for one short operation (see :attr:`exclusive`)."""
        return self.connect()

    @property
    def location(self) -> Path | None:
        """A local file backing the engine, if there is one (used for default stage paths)."""
        return None

    @property
    def exclusive(self) -> bool:
        """True when only one process at a time may open the database (an embedded file).

        Long-lived users such as the registry then open a connection per operation
        and release it at once, so parallel processes take turns instead of waiting
        for each other to exit.
        """
        return False

    def run_ddl(self, backend: Any, sql: str) -> None:
        """Run a statement whose result is not needed (DDL), releasing any cursor it opens."""
        result = backend.raw_sql(sql)
        if result is not getattr(backend, "con", None) and hasattr(result, "close"):
            result.close()

    def refresh_tables(self, backend: Any, names: Sequence[str], *, database: str | None = None) -> None:
        """Make the next reads see every write acknowledged to any session (engines that
        cache a table's file listing per session override this)."""

    @contextlib.contextmanager
    def transaction(self, backend: Any) -> Iterator[None]:
        """Statements run through :meth:`execute` inside this block commit together or not at all."""
        backend.raw_sql("BEGIN")
        try:
            yield
        except BaseException:
            backend.raw_sql("ROLLBACK")
            raise
        backend.raw_sql("COMMIT")

    def execute(self, backend: Any, statement: sge.Expression) -> int:
        """Run a data-changing statement (its values are literals sqlglot escaped); the rows it changed."""
        cursor = backend.raw_sql(statement.sql(backend.name))
        count = getattr(cursor, "rowcount", -1)
        if hasattr(cursor, "close") and cursor is not getattr(backend, "con", None):
            cursor.close()
        return count

    def create_view(self, backend: Any, name: str, expr: ir.Table, *, database: str | None = None) -> None:
        """Create the view ``name`` over ``expr``, visible to every connection to the database."""
        backend.create_view(name, expr, database=database)

    def insert_rows(
        self,
        backend: Any,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        database: str | None = None,
    ) -> None:
        """Append ``rows`` to ``table`` in ONE statement, values bound as data, never spliced
        into SQL text. One statement is atomic on every engine, so a batch of rows is all
        visible or none is.

        A driver whose engine binds parameters names its mark (:meth:`param_mark`) and runs
        one multi-row ``INSERT ... VALUES`` (:meth:`execute_bound`): one round trip, where
        Ibis's generic insert stages the rows in a temporary table or file first."""
        if not rows:
            return
        mark = self.param_mark(backend)
        if mark is None:
            schema = backend.get_schema(table, database=database)
            data = pa.table(
                {c: pa.array([r[i] for r in rows], type=schema[c].to_pyarrow()) for i, c in enumerate(columns)}
            )
            backend.insert(table, ibis.memtable(data), database=database)
            return
        sql, params = values_insert(self.name, table, columns, rows, mark=mark, database=database)
        self.execute_bound(backend, sql, params)

    def param_mark(self, backend: Any) -> str | None:
        """The DB-API placeholder the engine's connection takes (``?`` or ``%s``), or None to
        insert through Ibis."""
        return None

    def execute_bound(self, backend: Any, sql: str, params: Sequence[Any]) -> None:
        """Run one statement with ``params`` bound (drivers that have a :meth:`param_mark`)."""
        raise NotImplementedError

    def query(self, backend: Any, tree: sge.Expression, params: dict[str, Any]) -> pd.DataFrame:
        """Run a compiled SELECT whose ``sge.Placeholder(name)`` nodes take ``params``.

        Portable fallback: sqlglot writes each value as a correctly escaped literal.
        Engines with bound parameters override this.
        """
        def bind(node: sge.Expression) -> sge.Expression:
            if isinstance(node, sge.Placeholder) and node.this in params:
                return sge.convert(params[node.this])
            return node

        cursor = backend.raw_sql(tree.transform(bind).sql(backend.name))
        try:
            rows = cursor.fetchall()
            columns = [d[0] for d in cursor.description]
        finally:
            if cursor is not getattr(backend, "con", None):
                cursor.close()
        return pd.DataFrame.from_records(rows, columns=columns)

    def default_stage(self, schema: str | None) -> str | None:
        """The registry's stage URL on this engine when none is given; ``None``: a local folder."""
        return None

    def stage_filesystem(self, url: str, connection: Any) -> Any:
        """The store for a stage URL this engine serves itself (``@NAME`` on Snowflake), or
        ``None`` for fsspec URLs. ``connection`` returns the open connection to use."""
        if url.startswith("@"):
            raise NeveInputError(
                f"stage {url!r} names an internal stage, which only Snowflake has; "
                f"on {self.name} pass a folder or an s3:// URL"
            )
        return None

    def registry_grants(self, schema: str, user: str) -> list[str]:
        """The GRANTs that let ``user`` create tables and views in ``schema`` (SQL standard)."""
        return [
            f"GRANT USAGE ON SCHEMA {schema} TO {user};",
            f"GRANT CREATE ON SCHEMA {schema} TO {user};",
        ]

    def is_conflict(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a uniqueness violation or a write-write conflict worth retrying."""
        text = str(exc).lower()
        return any(word in text for word in ("duplicate key", "unique constraint", "conflict"))

    def fingerprint(self, table: ir.Table, columns: Sequence[str] | None = None) -> ir.Scalar | None:
        """An order-independent hash aggregate over every row (of ``columns``, by default
        all, in that order), computed in the engine; ``None`` when the engine has no row
        hash Ibis can compile."""
        names = list(table.columns) if columns is None else list(columns)
        try:
            expr = ibis.struct({c: table[c] for c in names}).hash().sum()
            ibis.to_sql(expr, dialect=self.name)
        except Exception:  # noqa: BLE001 - an engine without a hash function: lineage omits the fingerprint
            return None
        return expr

    def hash32(self, text: ir.StringValue) -> ir.IntegerValue:
        """A hash of ``text`` in ``[0, 2**32)`` that is the same number on every engine.

        Engines' own hash functions disagree (DuckDB's ``hash`` is not PostgreSQL's
        ``hashtext``), so this reads the first 8 hex digits of MD5, which all of them
        compute identically, as an integer with portable string functions only.
        """
        digest = _md5(text)
        # Accumulate in double precision (exact below 2**53): engines type the digit
        # positions as 32-bit integers, which the last digits would overflow.
        value: ir.FloatingValue = ibis.literal(0.0, type="float64")
        for i in range(8):
            digit = ibis.literal(_HEX_DIGITS).find(digest.substr(i, 1)).cast("float64")
            value = value * 16 + digit
        return value.cast("int64")

    def load_files(
        self, backend: Any, paths: list[Path], table: str, *, overwrite: bool
    ) -> ir.Table:
        """Portable fallback: parse each file with pyarrow and insert it."""
        for i, path in enumerate(paths):
            try:
                data = pq.read_table(path) if is_parquet(path) else pacsv.read_csv(path, convert_options=CSV_CELLS)
                if i == 0 and (overwrite or table not in backend.list_tables()):
                    backend.create_table(table, data, overwrite=True)
                else:
                    backend.insert(table, data)
            except Exception as exc:
                raise DataFileError(f"cannot load {path} into {table}: {exc}") from exc
        return backend.table(table)

    #: Whether the engine matches identifiers ignoring case, quoted or not (DuckDB): a name
    #: then finds its column in any case, and a query cannot hold two columns whose names
    #: differ only by case.
    case_insensitive_names: ClassVar[bool] = False

    @classmethod
    def resolve_column(cls, name: str, columns: Sequence[str]) -> str:
        """The column of a table that ``name``, as a user wrote it, refers to.

        ``'"col1"'`` is a quoted identifier, exactly ``col1``, on every engine (as in SQL and
        SnowML). Otherwise the engine's rule applies: names as written where identifiers are
        case-sensitive (PostgreSQL and Spark, through Ibis's quoting); any case where the
        engine ignores it (DuckDB), where a name that matches two columns is refused, naming
        both. A name found nowhere comes back as given, for the caller's "not found" error."""
        quoted = unquote(name)
        if quoted is not None:
            return quoted
        if not cls.case_insensitive_names:
            return name
        matches = [c for c in columns if c.casefold() == name.casefold()]
        if len(matches) > 1:
            raise AmbiguousColumnError(
                f"column name {name!r} matches {len(matches)} columns on {cls.name}, which ignores "
                f"case in names: {', '.join(map(repr, matches))}; rename one of them, or quote the "
                f"name to pick one exactly (e.g. {quote(matches[0])!r})"
            )
        return matches[0] if matches else name

    @classmethod
    def new_column_name(cls, name: str) -> str:
        """The name a new column gets when a user asks for ``name``: as written, or the
        exact name inside double quotes."""
        quoted = unquote(name)
        return name if quoted is None else quoted

    def raise_error_sql(self, message: ir.StringValue) -> ir.Value:
        """An expression that aborts the query with ``message`` when evaluated.

        Casting a non-numeric string to an integer fails on every SQL engine
        and the engine's error quotes the string, so the user sees our message.
        """
        return message.cast("int64")

    def close(self, backend: Any) -> None:
        disconnect = getattr(backend, "disconnect", None)
        if disconnect is not None:
            disconnect()
