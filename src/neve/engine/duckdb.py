"""DuckDB: the embedded default engine.

DuckDB lets one process at a time open a database file for writing. Airflow
runs tasks as parallel processes on the same file, so opening waits: it retries
with jittered exponential backoff up to ``lock_timeout`` seconds and then fails
naming the file and the process that holds it (``neve.engine._dbapi``, shared with the
plain DB-API reader the CLI uses).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd
import sqlglot.expressions as sge

from neve.engine._dbapi import DEFAULT_LOCK_TIMEOUT, duckdb_database, local_file, lock_timeout, open_waiting
from neve.engine._driver import Driver, _md5, is_parquet
from neve.errors import DataFileError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "DuckDBDriver"]

_SQL_TEXT: dict[int, tuple[sge.Expression, str]] = {}


class DuckDBDriver(Driver):
    name: ClassVar[str] = "duckdb"
    schemes: ClassVar[tuple[str, ...]] = ("duckdb",)
    #: ``SELECT age`` finds ``AGE``, quoted or not.
    case_insensitive_names: ClassVar[bool] = True
    #: 1.1-2.0x faster than nested CASE at 1M rows for the four models of BENCHMARKS.md,
    #: "Tree scoring".
    tree_scoring: ClassVar[str] = "bitmask"
    cte_materialization: ClassVar[bool] = True

    @property
    def database(self) -> str:
        """``:memory:`` or the file path (see :func:`neve.engine._dbapi.duckdb_database`)."""
        return duckdb_database(self.url)

    @property
    def location(self) -> Path | None:
        return local_file(self.url)

    @property
    def lock_timeout(self) -> float:
        return lock_timeout(self.url)

    def connect(self) -> Any:
        return self._open(max_delay=2.0)

    def connect_briefly(self) -> Any:
        # Registry operations hold the file for milliseconds, so waiters poll often
        # rather than backing off for seconds while the lock sits free.
        return self._open(max_delay=0.1)

    def _open(self, max_delay: float) -> Any:
        def opener(database: str, read_only: bool, config: dict[str, str]) -> Any:
            return ibis.duckdb.connect(database, read_only=read_only, **config)

        return open_waiting(self.url, opener, max_delay)

    @property
    def exclusive(self) -> bool:
        return self.database != ":memory:"

    def hash32(self, text: ir.StringValue) -> ir.IntegerValue:
        # The same number as the portable digit-by-digit reading (the first 8 hex digits of
        # MD5), but DuckDB parses '0x...' itself: ~7x cheaper, and train_test_split pays it
        # once per row in every query over a split.
        return ibis.literal("0x").concat(_md5(text).substr(0, 8)).cast("int64")

    # A prepared multi-row VALUES: one atomic statement, values bound, ~3x faster than Ibis's
    # memtable insert and without the temporary views it leaves behind.
    def param_mark(self, backend: Any) -> str:
        return "?"

    def execute_bound(self, backend: Any, sql: str, params: Sequence[Any]) -> None:
        backend.con.execute(sql, params)

    @contextlib.contextmanager
    def transaction(self, backend: Any) -> Iterator[None]:
        con = backend.con
        con.begin()
        try:
            yield
        except BaseException:
            con.rollback()
            raise
        con.commit()

    def execute(self, backend: Any, statement: sge.Expression) -> int:
        row = backend.con.execute(statement.sql("duckdb")).fetchone()
        return int(row[0]) if row else 0

    def query(self, backend: Any, tree: sge.Expression, params: dict[str, Any]) -> pd.DataFrame:
        sql = _SQL_TEXT.get(id(tree))
        if sql is None or sql[0] is not tree:  # callers keep trees alive, so ids are stable
            sql = _SQL_TEXT[id(tree)] = (tree, tree.sql("duckdb"))
        return backend.con.execute(sql[1], params).df()

    def is_conflict(self, exc: BaseException) -> bool:
        return isinstance(exc, (duckdb.ConstraintException, duckdb.TransactionException))

    def load_files(
        self, backend: Any, paths: list[Path], table: str, *, overwrite: bool
    ) -> ir.Table:
        kinds = {is_parquet(p) for p in paths}
        if len(kinds) > 1:
            raise DataFileError("load_files cannot mix CSV and Parquet files in one call")
        if kinds == {True}:
            reader = "read_parquet(?, union_by_name = true)"
        else:
            # strict_mode=false accepts files whose header and rows end lines differently
            # (LF then CRLF), which defeats DuckDB's dialect sniffer otherwise.
            reader = "read_csv(?, header = true, strict_mode = false, union_by_name = true)"
        name = sge.to_identifier(table, quoted=True).sql("duckdb")
        exists = table in backend.list_tables()
        if overwrite or not exists:
            sql = f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {reader}"
        else:
            sql = f"INSERT INTO {name} BY NAME SELECT * FROM {reader}"
        try:
            backend.con.execute(sql, [[str(p) for p in paths]])
        except duckdb.Error as exc:
            culprit = self._find_unreadable(backend, reader, paths) or ", ".join(map(str, paths))
            raise DataFileError(f"cannot load {culprit} into {table}: {exc}") from exc
        return backend.table(table)

    @staticmethod
    def _find_unreadable(backend: Any, reader: str, paths: list[Path]) -> str | None:
        """On the error path only: read the files one by one to name the bad one."""
        if len(paths) == 1:
            return str(paths[0])
        for path in paths:
            try:
                backend.con.execute(f"SELECT count(*) FROM {reader}", [[str(path)]]).fetchall()
            except duckdb.Error:
                return str(path)
        return None
