"""Apache Spark: the distributed engine, through Ibis's PySpark backend.

``spark://local[2]`` runs Spark inside this process (a laptop, the tests);
``spark://HOST:7077`` submits to a standalone master, ``spark://yarn`` to YARN.
The URL's path is the warehouse folder (default ``./.neve/spark/warehouse``) and its
query holds ``database=NAME`` (created when missing, then current), ``log_level``
(default ``ERROR``) and any ``spark.*`` setting, e.g.
``spark://local[4]/data/warehouse?database=ml&spark.driver.memory=4g``.
``sc://HOST:15002`` connects through Spark Connect, as Databricks and Spark 4 clusters
serve it (needs ``pip install 'pyspark[connect]'``).

Spark allows one SparkContext per process, so every connection to a local or cluster
master shares it: each neve session is a ``newSession()`` of it, with its own current
database, temporary views and SQL settings, and closing a neve session leaves the shared
context running for the next (its JVM takes seconds to start). Static settings (master,
warehouse, driver memory) are fixed by the first connection in the process; a later
URL asking for a different warehouse is refused rather than silently ignored.

Differences from the SQL engines, all handled here:

- Names are case-sensitive (``spark.sql.caseSensitive``), as quoted identifiers are on
  DuckDB and PostgreSQL, so ``TAXI_DATA`` stays ``TAXI_DATA`` in the catalog.
- ANSI mode stays on: a failed cast raises, which is how queries report bad input
  (see ``Driver.raise_error_sql``).
- Spark tables have no enforced keys (:attr:`SparkDriver.enforces_keys` is False), and
  appends to a Parquet table are not transactional across applications: see
  docs/spark.md for what that means for the registry.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import sqlglot as sg
import sqlglot.expressions as sge

from neve.engine._driver import Driver, is_parquet
from neve.errors import DataFileError, EngineError, InvalidURLError

__all__ = ["SparkDriver"]

DEFAULT_WAREHOUSE = ".neve/spark/warehouse"
CONNECT_SCHEME = "sc"
CONNECT_DEFAULT_PORT = 15002
CONNECT_TIMEOUT_SEC = 10
_NEVE_KEYS = {"database", "log_level"}
_LOG_LEVELS = {"ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN"}
_SQL_TEXT: dict[int, tuple[sge.Expression, str]] = {}
_start_lock = threading.Lock()
#: Appends to one Parquet table share its _temporary folder, which the first job to commit
#: deletes: inserts from threads of one process take turns (see docs/spark.md).
_insert_lock = threading.Lock()


@functools.cache
def _backend_class() -> type:
    """Ibis's PySpark backend with two corrections neve relies on, made here (the engine
    package) rather than spread over the transformers."""
    from ibis.backends.pyspark import Backend
    from ibis.backends.sql.compilers.base import FALSE, NULL
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    class Compiler(PySparkCompiler):
        def visit_Cast(self, op: ops.Cast, *, arg: sge.Expression, to: Any) -> sge.Expression:
            # neve aborts a query by casting its message to an integer (Driver.raise_error_sql);
            # Spark's cast error escapes every quote in the value it shows, so a message
            # naming a column arrives mangled. raise_error() carries it verbatim.
            if to.is_integer() and _is_neve_message(op.arg):
                return self.f.raise_error(arg)
            return super().visit_Cast(op, arg=arg, to=to)

        def visit_IsInf(self, op: ops.IsInf, *, arg: sge.Expression) -> sge.Expression:
            # ibis 12 writes ``arg == POS_INF`` on sqlglot nodes, which newer sqlglot
            # evaluates as a Python comparison: every isinf() compiled to FALSE.
            if not op.arg.dtype.is_floating():
                return FALSE
            return sg.or_(sge.EQ(this=arg, expression=self.POS_INF), sge.EQ(this=arg, expression=self.NEG_INF))

        def visit_ArrayCollect(self, op: ops.ArrayCollect, *, arg, where, order_by, include_null, distinct):
            # Spark's collect_list takes no ORDER BY (ibis refuses the form): collect
            # (keys..., value) structs, sort the array, keep the values. Categories are
            # learned this way, so the encoders need it.
            descending = {bool(o.args.get("desc")) for o in order_by or ()}
            if not order_by or distinct or include_null or len(descending) > 1:
                return super().visit_ArrayCollect(
                    op, arg=arg, where=where, order_by=order_by, include_null=include_null, distinct=distinct
                )
            fields = [item for i, o in enumerate(order_by) for item in (sge.convert(f"k{i}"), o.this)]
            pair = self.f.named_struct(*fields, sge.convert("v"), arg)
            keep = arg.is_(sg.not_(NULL))
            if where is not None:
                keep = sg.and_(where, keep)
            collected = self.f.collect_list(self.if_(keep, pair, NULL))
            ordered = self.f.sort_array(collected, sge.convert(not descending.pop()))
            x = sg.to_identifier("x")
            value = sge.Lambda(this=sge.Dot(this=x.copy(), expression=sg.to_identifier("v")), expressions=[x])
            return self.f.transform(ordered, value)

    class SparkBackend(Backend):
        compiler = Compiler()

        def _register_in_memory_table(self, op: ops.InMemoryTable) -> None:
            # Through Arrow, as the other engines load pandas: NaN in a float column
            # arrives as NULL (missing), not as a NaN value, and the upload is columnar
            # rather than row by row.
            # One partition: in-memory data is small, and a table written from it is then
            # one file that reads back in the order it was given (Spark orders a table's
            # files by size, not by name).
            data = op.data.to_pyarrow(op.schema)
            self._session.createDataFrame(data).coalesce(1).createOrReplaceTempView(op.name)

        def create_table(self, name: str, /, obj: Any = None, *, temp: bool | None = None, **kwargs: Any) -> Any:
            if not temp:
                return super().create_table(name, obj, **kwargs)
            # Ibis has no temporary tables on Spark. Spark's equivalent is a session's view;
            # over data checkpointed into the executors' block store, so that it outlives
            # its source (the scoring fallback's spool file, deleted right after).
            if obj is None:
                from ibis.backends.pyspark.datatypes import PySparkSchema

                schema = PySparkSchema.from_ibis(ibis.schema(kwargs["schema"]))
                frame = self._session.createDataFrame([], schema)
            else:
                table = obj if isinstance(obj, ir.Expr) else ibis.memtable(obj)
                self._run_pre_execute_hooks(table)
                frame = self._session.sql(self.compile(table))
            if not kwargs.get("overwrite") and self._session.catalog.tableExists(name):
                raise EngineError(f"table {name} already exists")
            frame.localCheckpoint(eager=True).createOrReplaceTempView(name)
            return self.table(name)

        def to_pyarrow(self, expr: ir.Expr, /, *, params: Any = None, limit: Any = None, **kwargs: Any) -> Any:
            # Ibis goes through pandas, where a NaN result turns into NULL: a fit could no
            # longer tell "all missing" from "NaN in the data". Spark 4 hands Arrow over.
            from ibis.formats.pyarrow import PyArrowData

            table_expr = expr.as_table()
            self._run_pre_execute_hooks(table_expr)
            sql = self.compile(table_expr, params=params, limit=limit, **kwargs)
            output = self._session.sql(sql).toArrow().rename_columns(table_expr.columns)
            return expr.__pyarrow_result__(PyArrowData.convert_table(output, table_expr.schema()))

    SparkBackend.register_options()  # ibis.options.pyspark, as loading ibis.pyspark does
    return SparkBackend


def _is_neve_message(node: ops.Node) -> bool:
    """``node`` is a message neve raises from inside a query: a string starting ``neve: ``."""
    while isinstance(node, ops.StringConcat):
        node = node.arg[0]
    return isinstance(node, ops.Literal) and isinstance(node.value, str) and node.value.startswith("neve: ")


class SparkDriver(Driver):
    name: ClassVar[str] = "spark"
    schemes: ClassVar[tuple[str, ...]] = ("spark", CONNECT_SCHEME, "pyspark")
    enforces_keys: ClassVar[bool] = False

    # -- the URL -------------------------------------------------------------------------------

    @property
    def is_connect(self) -> bool:
        return self.url.scheme == CONNECT_SCHEME

    @property
    def master(self) -> str:
        """``local[2]``, ``yarn``, or ``spark://host:7077`` for a standalone master."""
        host = self.url.host or "local[*]"
        if host.startswith("local") or host in ("yarn", "k8s"):
            return host
        return f"spark://{host}" + (f":{self.url.port}" if self.url.port else "")

    @property
    def cores(self) -> int:
        """The cores a ``local[N]`` master uses (used to size shuffles)."""
        inside = self.master.partition("[")[2].partition("]")[0].partition(",")[0]
        return int(inside) if inside.isdigit() else (os.cpu_count() or 2)

    @property
    def warehouse(self) -> Path | str:
        raw = self.url.path
        if raw in ("", "/"):
            return Path(DEFAULT_WAREHOUSE).resolve()
        if "://" in raw.lstrip("/"):  # s3a://..., hdfs://...: the cluster's own storage
            return raw.lstrip("/")
        if raw.startswith(("/./", "/../", "/~")):
            raw = raw[1:]
        return Path(raw).expanduser().resolve()

    @property
    def database(self) -> str | None:
        return self.url.query.get("database") or None

    @property
    def spark_conf(self) -> dict[str, str]:
        conf = {k: v for k, v in self.url.query.items() if k not in _NEVE_KEYS}
        unknown = sorted(k for k in conf if not k.startswith("spark."))
        if unknown:
            raise InvalidURLError(
                f"unknown option(s) {', '.join(unknown)} in {self.url.redacted()}: a Spark URL takes "
                f"database=..., log_level=... and spark.* settings"
            )
        return conf

    @property
    def log_level(self) -> str:
        level = self.url.query.get("log_level", "ERROR").upper()
        if level not in _LOG_LEVELS:
            raise InvalidURLError(f"log_level must be one of {', '.join(sorted(_LOG_LEVELS))}, got {level!r}")
        return level

    @property
    def connect_url(self) -> str:
        """The Spark Connect URL (``sc://host:port/;token=...``), secrets included."""
        port = f":{self.url.port}" if self.url.port else ""
        return f"sc://{self.url.host or 'localhost'}{port}{self.url.path}"

    # -- connecting ----------------------------------------------------------------------------

    def connect(self) -> Any:
        session = self._connect_session() if self.is_connect else self._shared_session().newSession()
        backend = _backend_class()().connect(session)
        # Quoted identifiers keep their case on the other engines; Spark folds names to
        # lower case unless told otherwise, and neve's tables are upper case.
        session.conf.set("spark.sql.caseSensitive", "true")
        try:
            session.conf.set("spark.sql.ansi.enabled", "true")
        except Exception:  # noqa: BLE001 - a managed service may fix it; Spark 4 defaults to true
            pass
        if self.database:
            backend.create_database(self.database, force=True)
            session.catalog.setCurrentDatabase(self.database)
        return backend

    def _connect_session(self) -> Any:
        # The client retries an unreachable server for ten minutes before it gives up; a
        # wrong host or port should fail at once, naming it.
        try:
            socket.create_connection(self._address, timeout=CONNECT_TIMEOUT_SEC).close()
        except OSError as exc:
            raise EngineError(f"cannot connect to Spark Connect at {self._shown()}: {exc.strerror or exc}") from None
        try:
            # The Connect client's own builder: pyspark.sql.SparkSession.builder.remote() also
            # sets SPARK_CONNECT_MODE_ENABLED in os.environ, which turns every later local
            # (spark://) session of the process into a Connect client that finds no server.
            from pyspark.sql.connect.session import SparkSession

            session = SparkSession.builder.remote(self.connect_url).create()
            # Local Spark runs in UTC (_shared_session); a server's sessions default to its
            # JVM's zone, where hour() and DST-crossing durations would differ.
            session.conf.set("spark.sql.session.timeZone", "UTC")
            # pyspark 4.0's reattachable results share one class-wide thread pool that any
            # Connect session closes when it is stopped or garbage-collected, so a query in
            # another session of the process could fail with "cannot schedule new futures
            # after shutdown" (SPARK-55406). Plain execution streams the same results
            # without that pool.
            session.client.disable_reattachable_execute()
            return session
        except ImportError as exc:
            raise EngineError(
                f"Spark Connect needs its client libraries: pip install 'pyspark[connect]' ({exc})"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - any client failure becomes one clear error
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"cannot connect to Spark Connect at {self._shown()}: {reason}") from None

    @property
    def _address(self) -> tuple[str, int]:
        return self.url.host or "localhost", self.url.port or CONNECT_DEFAULT_PORT

    def _shown(self) -> str:
        # Spark Connect passes a token as ";token=..." in the path: never show it.
        return f"sc://{self.url.host or 'localhost'}" + (f":{self.url.port}" if self.url.port else "")

    def _shared_session(self) -> Any:
        """The process's SparkSession, started on the first connection."""
        try:
            from pyspark import SparkContext
            from pyspark.sql import SparkSession
        except ModuleNotFoundError as exc:
            raise EngineError("Spark support is not installed: pip install 'neve[spark]'") from exc
        with _start_lock:
            running = SparkContext._active_spark_context
            if running is not None:
                return self._adopt(SparkSession.builder.getOrCreate())
            warehouse = self.warehouse
            if isinstance(warehouse, Path):
                warehouse.mkdir(parents=True, exist_ok=True)
            builder = (
                SparkSession.builder.master(self.master)
                .appName("neve")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.warehouse.dir", str(warehouse))
                # Spark's default of 200 shuffle partitions is sized for clusters; on one
                # machine each costs a task, so start from the cores (AQE coalesces further).
                .config("spark.sql.shuffle.partitions", str(max(2, self.cores)))
                .config("spark.sql.session.timeZone", "UTC")
                # Also set on every neve session (connect), but a DataFrame writer's saveAsTable
                # (load_files) resolves its table name under the context's setting: without
                # this, TAXI_RAW is saved as taxi_raw and not found again.
                .config("spark.sql.caseSensitive", "true")
            )
            for key, value in self.spark_conf.items():
                builder = builder.config(key, value)
            try:
                session = builder.getOrCreate()
            except Exception as exc:
                raise EngineError(
                    f"cannot start Spark ({self.master}): {exc}. Spark needs Java 17 or 21 "
                    f"(e.g. apt-get install openjdk-17-jre-headless)"
                ) from exc
            session.sparkContext.setLogLevel(self.log_level)
            return session

    def _adopt(self, session: Any) -> Any:
        """The running session, when its static settings agree with this URL's."""
        if self.url.path not in ("", "/") and isinstance(self.warehouse, Path):
            running = session.conf.get("spark.sql.warehouse.dir")
            if Path(running.removeprefix("file:")).resolve() != self.warehouse:
                raise EngineError(
                    f"this process already runs Spark with warehouse {running}; Spark allows one per "
                    f"process, so {self.url.redacted()} cannot use {self.warehouse}. Connect with the same "
                    f"warehouse (or none), or stop the running session first"
                )
        return session

    def close(self, backend: Any) -> None:
        # The local context is shared by every session in the process and costs seconds to
        # start: leave it running. A Connect session is this connection's own.
        if self.is_connect:
            backend._session.stop()

    # -- storage -------------------------------------------------------------------------------

    def default_stage(self, schema: str | None) -> str | None:
        """``<warehouse>/../stage``: the model files beside the tables of a local warehouse."""
        if self.is_connect or not isinstance(self.warehouse, Path):
            return None
        return str(self.warehouse.parent / "stage")

    def create_view(self, backend: Any, name: str, expr: ir.Table, *, database: str | None = None) -> None:
        # Ibis makes Spark views temporary (one session's); the registry's views belong in
        # the catalog beside its tables, where every session finds them.
        target = sge.table_(name, db=database, quoted=True).sql("spark")
        backend.raw_sql(f"CREATE OR REPLACE VIEW {target} AS {backend.compile(expr)}")

    # Positional parameters (Spark >= 3.5): one job, one set of new files, values bound
    # rather than spliced into the text.
    def param_mark(self, backend: Any) -> str:
        return "?"

    def execute_bound(self, backend: Any, sql: str, params: Sequence[Any]) -> None:
        with _insert_lock:
            backend._session.sql(sql, args=params)

    def query(self, backend: Any, tree: sge.Expression, params: dict[str, Any]) -> pd.DataFrame:
        sql = _SQL_TEXT.get(id(tree))
        if sql is None or sql[0] is not tree:  # callers keep trees alive, so ids are stable
            sql = _SQL_TEXT[id(tree)] = (tree, tree.sql("spark"))  # placeholders become :name
        return backend._session.sql(sql[1], args=params).toPandas()

    def fingerprint(self, table: ir.Table) -> ir.Scalar | None:
        expr = ibis.struct({c: table[c] for c in table.columns}).hash().cast("int64").sum()
        try:
            ibis.to_sql(expr, dialect="pyspark")
        except Exception:  # noqa: BLE001 - lineage omits the fingerprint
            return None
        return expr

    def load_files(self, backend: Any, paths: list[Path], table: str, *, overwrite: bool) -> ir.Table:
        if self.is_connect:
            # The server cannot read this machine's files: parse here and upload.
            return super().load_files(backend, paths, table, overwrite=overwrite)
        kinds = {is_parquet(p) for p in paths}
        if len(kinds) > 1:
            raise DataFileError("load_files cannot mix CSV and Parquet files in one call")
        session = backend._session
        files = [str(p.resolve()) for p in paths]
        exists = table in backend.list_tables()
        try:
            if kinds == {True}:
                frame = session.read.option("mergeSchema", "true").parquet(*files)
            else:
                frame = session.read.csv(files, header=True, inferSchema=True, mode="FAILFAST")
            frame.write.saveAsTable(table, format="parquet", mode="overwrite" if overwrite or not exists else "append")
        except Exception as exc:
            culprit = self._find_unreadable(session, paths, parquet=kinds == {True}) or ", ".join(files)
            reason = str(exc).strip().splitlines()[0]
            raise DataFileError(f"cannot load {culprit} into {table}: {reason}") from exc
        return backend.table(table)

    @staticmethod
    def _find_unreadable(session: Any, paths: list[Path], *, parquet: bool) -> str | None:
        """On the error path only: read the files one by one to name the bad one."""
        if len(paths) == 1:
            return str(paths[0])
        for path in paths:
            try:
                if parquet:
                    session.read.parquet(str(path)).count()
                else:
                    session.read.csv(str(path), header=True, inferSchema=True, mode="FAILFAST").count()
            except Exception:  # noqa: BLE001 - this is the file we are looking for
                return str(path)
        return None
