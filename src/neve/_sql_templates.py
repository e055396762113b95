"""Wide projections carried through Ibis as one node, their SQL assembled as text.

Why: Ibis validates and rewrites every column expression on its own, at about
0.3 ms per column to build and ~1 ms per column to compile, so a 560-column one-hot
transform cost ~2 s of Python before any SQL ran. :class:`SelectText` is one
relation whose output columns are small, hashable templates (a parent column, a
CASE over category lists, an Ibis value); the SQL compiler renders them as text in
the target dialect at a few µs per column. Only the handful of real Ibis values a
step needs (a column with NaN turned into NULL, a typed constant, the expression
that raises an error) go through Ibis, once per input column. :class:`ValueText`
does the same for one wide value (a fused one-hot term of a linear model). The
results are ordinary lazy Ibis tables and columns, as ``scoring._trees`` does for
trees.

Templates: ``Input(key)`` (an Ibis input), ``Const``, ``Member(x, values, never_null)``,
``Not``, ``Or``, ``Case``; a plain ``str`` in :class:`SelectText` is a parent column
passed through. :class:`QueryText` (the statistics queries a fit runs) adds ``Col``
(a column of one of its sources), ``Call`` (the aggregates every dialect spells alike),
``Arith``, ``AsDouble`` and ``Dialectal`` (an expression only Ibis can spell in every
dialect, compiled by Ibis once per dialect and reused as text).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ibis.expr.datashape as ds
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.sql.compilers.base import SQLGlotCompiler
from ibis.common.annotations import attribute
from ibis.common.collections import FrozenOrderedDict
from ibis.expr.schema import Schema
from sqlglot.dialects.spark import Spark

__all__ = [
    "Arith", "AsDouble", "Call", "Case", "Col", "Const", "Dialectal", "Input", "Member", "Not", "Or", "QueryText",
    "Looked", "Lookup", "LookupText", "SelectText", "Text", "ValueText", "lookup_text", "query_text", "select_text",
    "value_text",
]


# --- templates -----------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """The Ibis input named ``key`` (any hashable), compiled by Ibis."""

    key: Any

    def sql(self, r: _Render) -> str:
        return r.input(self.key)


@dataclass(frozen=True)
class Const:
    """A constant: string, bool, int, or float (written exactly, as ``neve._sql_literals``)."""

    value: Any

    def sql(self, r: _Render) -> str:
        return r.literal(self.value)


@dataclass(frozen=True)
class Member:
    """``x`` is one of ``values``; a missing entry (None/NaN) matches NULL.

    Same SQL as ``neve.preprocessing._categories.member``: ``never_null=False`` lets a
    NULL ``x`` give NULL (fine inside a CASE condition), ``True`` makes it FALSE.
    """

    x: Any
    values: tuple[Any, ...]
    never_null: bool = True

    def sql(self, r: _Render) -> str:
        x = self.x.sql(r)
        present = [v for v in self.values if not _is_missing(v)]
        if not present:
            cond = "FALSE"
        elif len(present) == 1:
            cond = f"{x} = {r.literal(present[0])}"
        else:
            cond = f"{x} IN ({', '.join(map(r.literal, present))})"
        if present and self.never_null:
            cond = f"COALESCE({cond}, FALSE)"
        if len(present) < len(self.values):
            cond = f"({cond} OR {x} IS NULL)"
        return cond


@dataclass(frozen=True)
class Not:
    arg: Any

    def sql(self, r: _Render) -> str:
        return f"NOT ({self.arg.sql(r)})"


@dataclass(frozen=True)
class Or:
    left: Any
    right: Any

    def sql(self, r: _Render) -> str:
        return f"({self.left.sql(r)} OR {self.right.sql(r)})"


@dataclass(frozen=True)
class Case:
    """``CASE WHEN c1 THEN v1 ... ELSE otherwise END`` (conditions and values are templates)."""

    branches: tuple[tuple[Any, Any], ...]
    otherwise: Any

    def sql(self, r: _Render) -> str:
        whens = " ".join(f"WHEN {c.sql(r)} THEN {v.sql(r)}" for c, v in self.branches)
        return f"CASE {whens} ELSE {self.otherwise.sql(r)} END"


@dataclass(frozen=True)
class TextLookup:
    """The value paired with the text ``x`` in ``pairs`` (``(key, double)``, distinct
    keys), else ``otherwise``: ``case`` (the same choice as a CASE template) everywhere but
    Spark, where it is a constant map.

    Spark compiles a CASE of a few hundred branches into a method longer than the JVM will
    JIT-compile, and runs it interpreted: taxi scoring at 1M rows (3 CASEs of 24 to 223
    branches) took 8.7 s as CASEs and 1.1 s as maps (BENCHMARKS.md, "Spark scale")."""

    x: Any
    pairs: tuple[tuple[str, float], ...]
    otherwise: Any
    case: Any

    def sql(self, r: _Render) -> str:
        if not (isinstance(r.dialect, type) and issubclass(r.dialect, Spark)):
            return self.case.sql(r)
        entries = ", ".join(f"{r.literal(k)}, {r.literal(v)}" for k, v in self.pairs)
        return f"COALESCE(try_element_at(map({entries}), {self.x.sql(r)}), {self.otherwise.sql(r)})"


@dataclass(frozen=True)
class Col:
    """Column ``name`` of a :class:`QueryText`'s source number ``source``."""

    name: str
    source: int = 0

    def sql(self, r: _Render) -> str:
        return r.column(self.source, self.name)


@dataclass(frozen=True)
class Call:
    """``FUNC(args)`` for functions every SQL dialect spells alike (COUNT, SUM, AVG, MIN,
    MAX, COALESCE); no ``args`` is ``FUNC(*)``."""

    func: str
    args: tuple[Any, ...] = ()

    def sql(self, r: _Render) -> str:
        return f"{self.func}({', '.join(a.sql(r) for a in self.args) or '*'})"


@dataclass(frozen=True)
class Arith:
    """``(left op right)`` for ``op`` in ``+ - * /`` or a comparison (``= <> < >``)."""

    op: str
    left: Any
    right: Any

    def sql(self, r: _Render) -> str:
        return f"({self.left.sql(r)} {self.op} {self.right.sql(r)})"


@dataclass(frozen=True)
class AsDouble:
    """``CAST(arg AS <double>)`` in the dialect's spelling (a number column, not a boolean:
    PostgreSQL cannot cast those, so they go through Ibis)."""

    arg: Any

    def sql(self, r: _Render) -> str:
        return r.as_double(self.arg.sql(r))


@dataclass(frozen=True)
class Dialectal:
    """``build(table)`` over the columns of source number ``source``, whose columns
    ``schema`` (``(name, dtype)`` pairs) names: an expression whose spelling differs per
    dialect (an ordered ARRAY_AGG, a filtered SUM). Ibis compiles it once per dialect and
    schema; later queries reuse the text with the source's alias put in. ``build`` must be
    a module-level function, as it keys that cache."""

    build: Callable[[Any], Any]
    schema: tuple[tuple[str, Any], ...]
    source: int = 0

    def sql(self, r: _Render) -> str:
        return r.dialectal(self)


@dataclass(frozen=True)
class Looked:
    """Value ``column`` of the row that lookup number ``lookup`` of a :class:`LookupText`
    found (NULL where it found none)."""

    lookup: int
    column: int

    def sql(self, r: _Render) -> str:
        return f"{r.ident(f'__neve_l{self.lookup}')}.{r.ident(f'v{self.column}')}"


@dataclass(frozen=True)
class Lookup:
    """A small constant table LEFT JOINed on the Ibis input ``key``: ``rows`` are
    ``(k, (v0, v1, ...))``, ``k`` a string, bool, int or float, the values doubles."""

    key: Any
    rows: tuple[tuple[Any, tuple[float, ...]], ...]


_PLACEHOLDER = "__neve_source__"
_dialectal_cache: dict[tuple[Any, Dialectal], str] = {}


def _point_columns_at(node: sge.Expression, table: sge.Identifier) -> None:
    """Qualify every column under ``node`` with ``table``, in place. (sqlglot's own walk
    skips the tuples Ibis leaves in some nodes, e.g. an ARRAY_AGG's ORDER BY.)"""
    if isinstance(node, sge.Column):
        node.set("table", table.copy())
    for value in node.args.values():
        for child in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(child, sge.Expression):
                _point_columns_at(child, table)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- rendering -----------------------------------------------------------


class _Render:
    """Text of identifiers, literals and compiled inputs in one dialect."""

    def __init__(
        self,
        compiler: SQLGlotCompiler,
        keys: Sequence[Any],
        inputs: Sequence[sge.Expression],
        sources: Sequence[sge.Expression] = (),
    ) -> None:
        self.dialect = compiler.dialect
        self._compiler = compiler
        self._inputs = dict(zip(keys, inputs, strict=True))
        self._rendered: dict[Any, str] = {}
        self._quote, self._string, self._double, self._cast_double = _dialect_rules(self.dialect)
        self._sources = [self._quote(source.alias_or_name) for source in sources]

    def input(self, key: Any) -> str:
        text = self._rendered.get(key)
        if text is None:
            expr = self._inputs[key]
            text = expr.sql(dialect=self.dialect)
            if not isinstance(expr, (sge.Column, sge.Literal)):
                text = f"({text})"
            self._rendered[key] = text
        return text

    def ident(self, name: str) -> str:
        return self._quote(name)

    def column(self, source: int, name: str) -> str:
        return f"{self._sources[source]}.{self._quote(name)}"

    def as_double(self, text: str) -> str:
        return self._cast_double(text)

    def dialectal(self, template: Dialectal) -> str:
        key = (type(self._compiler), Dialectal(template.build, template.schema))
        text = _dialectal_cache.get(key)
        if text is None:
            import ibis

            table = ibis.table(dict(template.schema), name=_PLACEHOLDER)
            select = self._compiler.to_sqlglot(table.aggregate(__value=template.build(table)))
            expr = select.expressions[0].this
            _point_columns_at(expr, sg.to_identifier(_PLACEHOLDER, quoted=True))
            text = _dialectal_cache[key] = f"({expr.sql(dialect=self.dialect)})"
        return text.replace(self._quote(_PLACEHOLDER), self._sources[template.source])

    def literal(self, value: Any) -> str:
        if isinstance(value, str):
            return self._string(value)
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return self._double(value)
        return sge.convert(value).sql(dialect=self.dialect)


@functools.cache
def _dialect_rules(dialect: Any) -> tuple[Any, Any, Any, Any]:
    """Fast renderers for identifiers, strings and exact doubles, checked against sqlglot
    once per dialect; values the fast path cannot vouch for go through sqlglot."""

    def slow_ident(name: str) -> str:
        return sg.to_identifier(name, quoted=True).sql(dialect=dialect)

    def slow_string(value: str) -> str:
        return sge.Literal.string(value).sql(dialect=dialect)

    quote = slow_ident
    if slow_ident('a"b') == '"a""b"':
        def quote(name: str) -> str:
            return '"' + name.replace('"', '""') + '"'

    string = slow_string
    if slow_string("ab") == "'ab'":
        def string(value: str) -> str:
            # Quotes, backslashes and control characters are escaped differently per dialect.
            if "'" in value or "\\" in value or not value.isprintable():
                return slow_string(value)
            return f"'{value}'"

    # A bare decimal is DECIMAL/NUMERIC on some engines; a cast from the shortest
    # round-trip string is exact (see neve._sql_literals).
    head, tail = sge.cast(sge.Literal.string("0"), "double").sql(dialect=dialect).split("'0'", 1)

    def double(value: float) -> str:
        return f"{head}'{value!r}'{tail}"

    def cast_double(text: str) -> str:
        return f"{head}{text}{tail}"

    return quote, string, double, cast_double


# --- the Ibis nodes ------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """The output columns of a :class:`SelectText`: names, types and items. One opaque
    value rather than three tuples, so Ibis's graph passes do not walk every column."""

    names: tuple[str, ...]
    dtypes: tuple[dt.DataType, ...]
    items: tuple[Any, ...]


class _TextRelation(ops.Relation):
    """A relation whose SQL neve writes as text: no Ibis values of its own (``values``), its
    schema from its :class:`Columns` (``columns``, a field of each subclass)."""

    @attribute
    def values(self) -> FrozenOrderedDict:
        return FrozenOrderedDict()

    @attribute
    def schema(self) -> Schema:
        return Schema(dict(zip(self.columns.names, self.columns.dtypes, strict=True)))


class SelectText(_TextRelation):
    """``SELECT <items> FROM parent``: one item per output column, a parent column name
    (``str``) or a template over ``inputs`` (Ibis values over ``parent``)."""

    parent: ops.Relation
    columns: Columns
    keys: tuple[Any, ...]
    inputs: tuple[ops.Value, ...]


class QueryText(_TextRelation):
    """``SELECT <items> FROM s0 CROSS JOIN s1 ... [GROUP BY <group_by>]``: one item per
    output column, a template over the ``sources`` (``Col``) and ``inputs`` (Ibis values
    over them). The statistics queries a fit runs, without Ibis's per-expression cost."""

    sources: tuple[ops.Relation, ...]
    columns: Columns
    group_by: tuple[Any, ...]
    keys: tuple[Any, ...]
    inputs: tuple[ops.Value, ...]


class LookupText(_TextRelation):
    """``SELECT <items> FROM parent LEFT JOIN (VALUES ...) AS __neve_l0(k, v0, ...) ON ...``:
    :class:`SelectText` with small constant tables joined on inputs, whose values the
    items read through :class:`Looked`."""

    parent: ops.Relation
    columns: Columns
    lookups: tuple[Lookup, ...]
    keys: tuple[Any, ...]
    inputs: tuple[ops.Value, ...]


class ValueText(ops.Value):
    """One column-shaped value rendered from ``template`` over ``inputs``."""

    keys: tuple[Any, ...]
    inputs: tuple[ops.Value, ...]
    template: Any
    dtype: dt.DataType
    shape = ds.columnar


class Text:
    """A column to be written as ``template`` (over the Ibis ``inputs``, by key) in a
    :func:`select_text`; used while assembling, never stored in a node."""

    def __init__(self, template: Any, dtype: dt.DataType, inputs: dict[Any, Any]) -> None:
        self.template, self.dtype, self.inputs = template, dtype, inputs


def select_text(table: Any, columns: Sequence[tuple[str, Any]]) -> Any:
    """The lazy table ``SELECT <columns> FROM table``. ``columns`` are ``(name, item)``:
    a column of ``table`` (``str``), an Ibis value over ``table``, or a :class:`Text`.

    Over a :class:`SelectText` whose names differ only by case (one-hot columns of the
    categories ``A`` and ``a``) the two projections become one SELECT: an engine that binds
    names without regard to case (DuckDB) would read ``"X_a"`` from the inner one as ``X_A``.
    """
    schema = table.schema()
    inner = table.op()
    rebase = _Rebase(inner) if isinstance(inner, SelectText) and _case_collisions(inner.columns.names) else None
    names, dtypes, items, inputs = [], [], [], {}
    for name, item in columns:
        names.append(name)
        if isinstance(item, str):
            dtypes.append(schema[item])
            if rebase is None:
                items.append(item)
            else:
                items.append(rebase.item(item, inputs))
        elif isinstance(item, Text):
            dtypes.append(item.dtype)
            items.append(item.template)
            inputs.update(item.inputs)
        else:
            key = ("__value", name)
            dtypes.append(item.type())
            items.append(Input(key))
            inputs[key] = item
    ops_ = [v.op() for v in inputs.values()]
    if rebase is not None:
        ops_ = [op.replace(rebase.fields) for op in ops_]
    op = SelectText(
        parent=inner.parent if rebase is not None else inner,
        columns=Columns(tuple(names), tuple(dtypes), tuple(items)),
        keys=tuple(inputs),
        inputs=tuple(ops_),
    )
    return op.to_expr()


def lookup_text(
    table: Any, columns: Sequence[tuple[str, Any]], lookups: Sequence[Lookup], inputs: dict[Any, Any]
) -> Any:
    """The lazy table ``SELECT <columns> FROM table LEFT JOIN <lookups>``. ``columns`` are
    ``(name, item)``: a column of ``table`` (``str``) or a :class:`Text`; ``inputs`` the
    Ibis values over ``table`` that the lookups join on, by key."""
    schema = table.schema()
    names, dtypes, items = [], [], []
    inputs = dict(inputs)
    for name, item in columns:
        names.append(name)
        if isinstance(item, str):
            dtypes.append(schema[item])
            items.append(item)
        else:
            dtypes.append(item.dtype)
            items.append(item.template)
            inputs.update(item.inputs)
    return LookupText(
        parent=table.op(),
        columns=Columns(tuple(names), tuple(dtypes), tuple(items)),
        lookups=tuple(lookups),
        keys=tuple(inputs),
        # bound to ``table``: an input may name a column of a relation ``table`` projects
        inputs=tuple(v.op() for v in table.bind(*inputs.values())) if inputs else (),
    ).to_expr()


def query_text(
    sources: Sequence[Any],
    columns: Sequence[tuple[str, Any, Any]],
    inputs: dict[Any, Any] | None = None,
    *,
    group_by: Sequence[Any] = (),
) -> Any:
    """The lazy table ``SELECT <columns> FROM sources[0] CROSS JOIN ... [GROUP BY ...]``.

    ``columns`` are ``(name, template, dtype)``; the dtype is what the engine returns
    (the result is converted to it). ``inputs`` are the Ibis values (over the sources)
    that ``Input`` templates name by key."""
    inputs = inputs or {}
    names, items, dtypes = zip(*columns, strict=True) if columns else ((), (), ())
    return QueryText(
        sources=tuple(s.op() for s in sources),
        columns=Columns(tuple(names), tuple(dt.dtype(d) for d in dtypes), tuple(items)),
        group_by=tuple(group_by),
        keys=tuple(inputs),
        inputs=tuple(v.op() for v in inputs.values()),
    ).to_expr()


def _case_collisions(names: Sequence[str]) -> bool:
    return len({n.casefold() for n in names}) < len(names)


class _Rebase:
    """The columns of a :class:`SelectText` as values over its parent, to merge the SELECT
    written over it into it: a passed-through column is the parent's column, a template is
    a :class:`ValueText` over the same inputs."""

    def __init__(self, inner: SelectText) -> None:
        parent, by_key = inner.parent, dict(zip(inner.keys, inner.inputs, strict=True))
        self.fields: dict[ops.Field, ops.Value] = {}
        self._items: dict[str, Any] = {}
        for name, dtype, item in zip(inner.columns.names, inner.columns.dtypes, inner.columns.items, strict=True):
            if isinstance(item, str):
                value = ops.Field(parent, item)
            elif isinstance(item, Input):
                value = by_key[item.key]
            else:
                keys = tuple(k for k in by_key if k in _input_keys(item))
                value = ValueText(keys=keys, inputs=tuple(by_key[k] for k in keys), template=item, dtype=dtype)
            self.fields[ops.Field(inner, name)] = value
            self._items[name] = item
        self._values = {name: self.fields[ops.Field(inner, name)] for name in self._items}

    def item(self, name: str, inputs: dict[Any, Any]) -> Any:
        """The merged SELECT's item for the inner column ``name`` (adding to ``inputs``)."""
        item = self._items[name]
        if isinstance(item, str):
            return item
        key = ("__merged", name)
        inputs[key] = self._values[name].to_expr()
        return Input(key)


def _input_keys(template: Any) -> set[Any]:
    """The keys of every :class:`Input` inside ``template``."""
    if isinstance(template, Input):
        return {template.key}
    if isinstance(template, tuple):
        return set().union(*map(_input_keys, template)) if template else set()
    if hasattr(template, "__dataclass_fields__"):
        return _input_keys(tuple(getattr(template, f) for f in template.__dataclass_fields__))
    return set()


def value_text(template: Any, dtype: dt.DataType, inputs: dict[Any, Any]) -> Any:
    """A lazy column written as ``template`` over the Ibis ``inputs`` (by key)."""
    return ValueText(
        keys=tuple(inputs), inputs=tuple(v.op() for v in inputs.values()), template=template, dtype=dtype
    ).to_expr()


def _visit_select_text(self: SQLGlotCompiler, op: SelectText, *, parent: Any, inputs: Any, **_: Any) -> Any:
    r = _Render(self, op.keys, inputs)
    table = r.ident(parent.alias_or_name)
    fields = ", ".join(
        (f"{table}.{r.ident(item)}" if isinstance(item, str) else item.sql(r)) + f" AS {r.ident(name)}"
        for name, item in zip(op.columns.names, op.columns.items, strict=True)
    )
    return sg.select(sge.Var(this=fields), copy=False).from_(parent, copy=False)


def _visit_lookup_text(self: SQLGlotCompiler, op: LookupText, *, parent: Any, inputs: Any, **_: Any) -> Any:
    query = _visit_select_text(self, op, parent=parent, inputs=inputs)
    r = _Render(self, op.keys, inputs)
    joins = []
    for a, lookup in enumerate(op.lookups):
        alias = sg.to_identifier(f"__neve_l{a}", quoted=True)
        width = len(lookup.rows[0][1])
        # The rows as one text: as sqlglot tuples, a pass of 25 models' coefficients for 260
        # zones was thousands of nodes, copied and rendered at ~0.1 s.
        rows = [sge.Var(this=", ".join(
            f"({', '.join([r.literal(k), *(r.literal(float(v)) for v in vs)])})" for k, vs in lookup.rows))]
        names = [sg.to_identifier(n, quoted=True) for n in ("k", *(f"v{j}" for j in range(width)))]
        table = sge.Values(expressions=rows, alias=sge.TableAlias(this=alias, columns=names))
        on = f"{r.input(lookup.key)} = {r.ident(f'__neve_l{a}')}.{r.ident('k')}"
        joins.append(sge.Join(this=table, side="LEFT", on=sge.Var(this=on)))
    query.set("joins", joins)
    return query


def _visit_query_text(self: SQLGlotCompiler, op: QueryText, *, sources: Any, inputs: Any, **_: Any) -> Any:
    r = _Render(self, op.keys, inputs, sources)
    fields = ", ".join(
        f"{item.sql(r)} AS {r.ident(name)}" for name, item in zip(op.columns.names, op.columns.items, strict=True)
    )
    query = sg.select(sge.Var(this=fields), copy=False).from_(sources[0], copy=False)
    if len(sources) > 1:  # built directly: Select.join parses its argument, at ~1 ms a call
        query.set("joins", [sge.Join(this=source, kind="CROSS") for source in sources[1:]])
    if op.group_by:
        query = query.group_by(sge.Var(this=", ".join(g.sql(r) for g in op.group_by)), copy=False)
    return query


def _visit_value_text(self: SQLGlotCompiler, op: ValueText, *, inputs: Any, **_: Any) -> Any:
    return sge.Paren(this=sge.Var(this=op.template.sql(_Render(self, op.keys, inputs))))


# Compilers dispatch on ``visit_<OpName>`` by attribute lookup, so every SQL backend
# (and every subclass compiler) picks these up.
SQLGlotCompiler.visit_SelectText = _visit_select_text  # type: ignore[attr-defined]
SQLGlotCompiler.visit_ValueText = _visit_value_text  # type: ignore[attr-defined]
SQLGlotCompiler.visit_QueryText = _visit_query_text  # type: ignore[attr-defined]
SQLGlotCompiler.visit_LookupText = _visit_lookup_text  # type: ignore[attr-defined]
