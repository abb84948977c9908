"""Profiles fed below whylogs' ``track``.

whylogs resolves a column's metrics from the schema every time a profile meets the
column (tens of milliseconds for a new profile of twenty columns), preprocesses every
column on every ``track`` call, and keeps a few dozen Python objects per column. Here
each column's metrics are resolved once per ``(column, dtype)`` into a
:class:`ColumnSpec`, and a profile's column is one :class:`RawColumn`: the counters and
sketches of whylogs' standard metrics, updated from the pieces of :mod:`._columns` with
the arithmetic of those metrics' ``columnar_update``. whylogs metric objects are built
only when a view is read (:mod:`._view`).

A column whose metrics include anything else (the unicode-range metric, for one) keeps
real whylogs metrics in a :class:`ColumnState` fed with whylogs ``PreprocessedColumn``
pieces. Only schemas :func:`supports` accepts come here at all; segments, validators,
UDFs and custom metrics go through ``DatasetProfile.track``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import whylogs_sketching as ds
from whylogs.core import DatasetSchema
from whylogs.core.metrics import (
    CardinalityMetric,
    ColumnCountsMetric,
    DistributionMetric,
    FrequentItemsMetric,
    IntsMetric,
    Metric,
    TypeCountersMetric,
)
from whylogs.core.metrics.metric_components import MetricComponent
from whylogs.core.metrics.unicode_range import UnicodeRangeMetric
from whylogs.core.preprocessing import PreprocessedColumn
from whylogs.core.resolvers import DeclarativeResolver, StandardResolver
from whylogs.core.schema import ColumnSchema, DeclarativeSchema
from whylogs.core.view import ColumnProfileView

from ._columns import Plain

__all__ = ["ColumnSpec", "ColumnState", "ProfileTemplate", "RawColumn", "supports"]

STANDARD_METRICS: Final = frozenset(
    {
        ColumnCountsMetric,
        TypeCountersMetric,
        DistributionMetric,
        IntsMetric,
        CardinalityMetric,
        FrequentItemsMetric,
        UnicodeRangeMetric,
    }
)

# Where each component of the standard metrics lives in a RawColumn.
_RAW_FIELDS: Final = {
    "counts": {"n": "n", "null": "null", "nan": "nan", "inf": "inf", "true": "true"},
    "types": {
        "integral": "integral",
        "fractional": "fractional",
        "boolean": "boolean",
        "string": "string",
        "object": "objects",
        "tensor": "tensor",
    },
    "distribution": {"kll": "kll", "mean": "mean", "m2": "m2"},
    "ints": {"max": "int_max", "min": "int_min"},
    "cardinality": {"hll": "hll"},
    "frequent_items": {"frequent_strings": "fi"},
}
_RAW_CLASSES: Final = {
    "counts": ColumnCountsMetric,
    "types": TypeCountersMetric,
    "distribution": DistributionMetric,
    "ints": IntsMetric,
    "cardinality": CardinalityMetric,
    "frequent_items": FrequentItemsMetric,
}
# whylogs feeds booleans to the distribution and frequent-items sketches in lists of
# this many.
_BOOL_CHUNK: Final = 1000
# Kinds of component values, as written.
_INT, _FLOAT, _KLL, _HLL, _FREQUENT = range(5)


def supports(schema: DatasetSchema | None) -> bool:
    """Whether profiles of ``schema`` can be built here with the same result as
    ``DatasetProfile.track``."""
    if schema is None:
        return True
    if type(schema) not in (DatasetSchema, DeclarativeSchema):
        return False  # subclasses may run UDFs in _run_udfs
    if schema.segments or schema.validators:
        return False
    if any(isinstance(declared, tuple) for declared in schema.types.values()):
        return False  # (dtype, ColumnProperties) takes whylogs' homogeneous path
    resolver = schema.resolvers
    if type(resolver) is StandardResolver:
        return True
    if type(resolver) is DeclarativeResolver:
        specs = [*resolver._resolvers, *resolver._anti_resolvers]
        return all(spec.metric in STANDARD_METRICS for rs in specs for spec in rs.metrics)
    return False


# Fresh metrics from a template


def _value_factory(value: Any) -> Callable[[], Any]:
    kind = type(value)
    if kind in (int, float):
        return lambda: value
    if kind is ds.kll_doubles_sketch:
        k = value.get_k()
        return lambda: ds.kll_doubles_sketch(k=k)
    if kind is ds.hll_sketch:
        lg_k, target = value.lg_config_k, value.tgt_type
        return lambda: ds.hll_sketch(lg_k, target)
    if kind is ds.frequent_strings_sketch:
        return _frequent_strings_factory(value)
    return lambda: copy.deepcopy(value)


def _frequent_strings_factory(empty: ds.frequent_strings_sketch) -> Callable[[], Any]:
    serialized = empty.serialize()
    # The sketch does not tell its lg_max_k; byte 3 of its serialized form holds it.
    lg_max_k = serialized[3]
    if ds.frequent_strings_sketch(lg_max_k=lg_max_k).serialize() == serialized:
        return lambda: ds.frequent_strings_sketch(lg_max_k=lg_max_k)
    return lambda: ds.frequent_strings_sketch.deserialize(serialized)


def _clone_component(template: MetricComponent, value: Any) -> MetricComponent:
    # Building a component looks up its aggregator and serializers in registries;
    # copying the template's attributes skips that and gives the same object.
    clone = object.__new__(type(template))
    clone.__dict__.update(template.__dict__)
    clone._value = value
    return clone


def metric_factory(template: Metric) -> Callable[[], Metric]:
    """A function returning a new metric equal to ``template`` as it was when empty."""
    kind = type(template)
    if kind is UnicodeRangeMetric:
        return _unicode_range_factory(template)
    fixed: dict[str, Any] = {}
    parts: dict[str, tuple[MetricComponent, Callable[[], Any]]] = {}
    for name, value in template.__dict__.items():
        if isinstance(value, MetricComponent):
            parts[name] = (value, _value_factory(value._value))
        else:
            fixed[name] = value

    def fresh() -> Metric:
        clone = object.__new__(kind)
        state = dict(fixed)
        for name, (component, make) in parts.items():
            state[name] = _clone_component(component, make())
        clone.__dict__.update(state)
        return clone

    return fresh


def _unicode_range_factory(template: UnicodeRangeMetric) -> Callable[[], Metric]:
    fixed = {k: v for k, v in template.__dict__.items() if k != "submetrics"}
    subfactories = {
        name: {namespace: metric_factory(metric) for namespace, metric in metrics.items()}
        for name, metrics in template.submetrics.items()
    }

    def fresh() -> Metric:
        clone = object.__new__(UnicodeRangeMetric)
        clone.__dict__.update(fixed)
        clone.range_definitions = dict(template.range_definitions)
        clone.submetrics = {
            name: {namespace: make() for namespace, make in makers.items()}
            for name, makers in subfactories.items()
        }
        return clone

    return fresh


# Column specs


class ColumnSpec:
    """The resolved metrics of one ``(column, dtype)``: how to make a fresh column, and
    for a raw column, how to turn it back into whylogs metrics and messages."""

    def __init__(self, metrics: dict[str, Metric]) -> None:
        self.templates = metrics
        self.raw = all(
            _RAW_CLASSES.get(namespace) is type(metric)
            and metric.namespace == namespace
            and {k for k, v in metric.__dict__.items() if isinstance(v, MetricComponent)}
            == set(_RAW_FIELDS[namespace])
            for namespace, metric in metrics.items()
        )
        self._factories = {ns: metric_factory(metric) for ns, metric in metrics.items()}
        self.counts = "counts" in metrics
        self.types = "types" in metrics
        self.ints = "ints" in metrics
        distribution = metrics.get("distribution")
        cardinality = metrics.get("cardinality")
        frequent = metrics.get("frequent_items")
        self.distribution = distribution is not None
        self.new_kll = _value_factory(distribution.kll.value) if distribution else None
        # A column of strings never fills its distribution sketch; until a number comes,
        # a raw column has none, and is written with this empty one.
        self.empty_kll = distribution.kll.value.serialize() if distribution else b""
        self.new_hll = _value_factory(cardinality.hll.value) if cardinality else None
        self.new_fi = _value_factory(frequent.frequent_strings.value) if frequent else None
        self.fi_max_size = frequent.max_frequent_item_size if frequent else 0
        ints = metrics.get("ints")
        self.int_bounds = (ints.max.value, ints.min.value) if ints else (0, 0)
        # Components in the order whylogs writes them: (path, attribute, template).
        self.layout: list[tuple[str, str, MetricComponent]] = []
        if self.raw:
            for namespace, metric in metrics.items():
                for field, value in metric.__dict__.items():
                    if isinstance(value, MetricComponent):
                        attribute = _RAW_FIELDS[namespace][field]
                        self.layout.append((f"{namespace}/{field}", attribute, value))
        self.paths = [path for path, _, _ in self.layout]

    def plan(self, index_of: dict[str, int]) -> list[tuple[int, str, int, int]]:
        """For :meth:`RawColumn.write_components`: per component, its index among the
        profile's paths, the raw attribute, the kind of value, and the type id."""
        kinds = {
            int: _INT,
            float: _FLOAT,
            ds.kll_doubles_sketch: _KLL,
            ds.hll_sketch: _HLL,
            ds.frequent_strings_sketch: _FREQUENT,
        }
        return [
            (index_of[path], attribute, kinds[type(template._value)], template.type_id)
            for path, attribute, template in self.layout
        ]

    def new_column(self) -> RawColumn | ColumnState:
        if self.raw:
            return RawColumn(self)
        return self.new_state()

    def new_state(self) -> ColumnState:
        """Fresh whylogs metrics, for values only whylogs' preprocessing can read."""
        return ColumnState({ns: make() for ns, make in self._factories.items()})

    def metrics_of(self, column: RawColumn) -> dict[str, Metric]:
        """whylogs metrics holding ``column``'s state (its sketches, not copies)."""
        result: dict[str, Metric] = {}
        for namespace, template in self.templates.items():
            clone = object.__new__(type(template))
            state: dict[str, Any] = {}
            for field, value in template.__dict__.items():
                if isinstance(value, MetricComponent):
                    attribute = _RAW_FIELDS[namespace][field]
                    current = getattr(column, attribute)
                    if current is None and attribute == "kll":
                        current = column.kll = self.new_kll()  # type: ignore[misc]
                    value = _clone_component(value, current)
                state[field] = value
            clone.__dict__.update(state)
            result[namespace] = clone
        return result


class RawColumn:
    """One column of one profile, as the counters and sketches of whylogs' standard
    metrics (those its :class:`ColumnSpec` names)."""

    __slots__ = (
        "spec",
        "n",
        "null",
        "nan",
        "inf",
        "true",
        "integral",
        "fractional",
        "boolean",
        "string",
        "objects",
        "tensor",
        "kll",
        "mean",
        "m2",
        "int_max",
        "int_min",
        "hll",
        "fi",
        "successes",
        "failures",
        "seen",
    )

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec
        self.n = self.null = self.nan = self.inf = self.true = 0
        self.integral = self.fractional = self.boolean = self.string = 0
        self.objects = self.tensor = 0
        self.kll: Any = None  # made at the first number (ColumnSpec.empty_kll)
        self.mean = 0.0
        self.m2 = 0.0
        self.int_max: int = spec.int_bounds[0]
        self.int_min: int = spec.int_bounds[1]
        self.hll: Any = spec.new_hll() if spec.new_hll is not None else None
        self.fi: Any = spec.new_fi() if spec.new_fi is not None else None
        self.successes = self.failures = 0
        self.seen = False

    def update(self, piece: Plain) -> None:
        """What the ``columnar_update`` of each standard metric does with this piece."""
        length = piece.length
        if length <= 0:
            return
        spec = self.spec
        floats, ints, strings = piece.floats, piece.ints, piece.strings
        float_count = len(floats) if floats is not None else 0
        int_count = len(ints) if ints is not None else 0
        string_count = len(strings) if strings is not None else 0
        bools = piece.true + piece.false
        if spec.counts:
            self.n += length
            self.null += piece.null
            self.nan += piece.nan
            self.inf += piece.inf
            self.true += piece.true
            self.successes += length
        if spec.types:
            self.integral += int_count
            self.fractional += float_count
            self.boolean += bools
            self.string += string_count
            self.successes += int_count + float_count + bools + string_count
        if spec.distribution and (float_count or int_count or bools):
            self._distribution(piece, float_count, int_count)
        if spec.ints and int_count:
            self.int_max = max(self.int_max, piece.int_max)
            self.int_min = min(self.int_min, piece.int_min)
            self.successes += int_count
        if self.hll is not None:
            self._cardinality(piece, float_count, int_count, string_count, bools)
        if self.fi is not None:
            self._frequent_items(piece, float_count, int_count, string_count)

    def _distribution(self, piece: Plain, float_count: int, int_count: int) -> None:
        kll = self.kll
        if kll is None:
            assert self.spec.new_kll is not None
            kll = self.kll = self.spec.new_kll()
        n = kll.get_n()
        mean, m2 = self.mean, self.m2
        for values, count, stats in (
            (piece.floats, float_count, piece.float_stats),
            (piece.ints, int_count, piece.int_stats),
        ):
            if not count:
                continue
            kll.update(array=values)
            assert stats is not None
            n, mean, m2 = _combine(n, mean, m2, stats.n, stats.mean, stats.m2)
        for value, count in ((1, piece.true), (0, piece.false)):
            while count > 0:
                chunk = min(count, _BOOL_CHUNK)
                kll.update_list([value] * chunk)
                n, mean, m2 = _combine(n, mean, m2, chunk, value, 0)
                count -= chunk
        self.mean, self.m2 = mean, m2

    def _cardinality(
        self, piece: Plain, float_count: int, int_count: int, string_count: int, bools: int
    ) -> None:
        hll = self.hll
        if int_count:
            hll.update_np(piece.ints)
        if float_count:
            hll.update_np(piece.floats)
        if string_count:
            hll.update_str_list(piece.strings)
        if bools:
            if piece.true and piece.false:
                hll.update_int_list([1, 0])
            else:
                hll.update(1 if piece.true else 0)
        self.successes += int_count + float_count + string_count + bools

    def _frequent_items(
        self, piece: Plain, float_count: int, int_count: int, string_count: int
    ) -> None:
        fi = self.fi
        if float_count:
            fi.update_np(piece.floats)
        if int_count:
            fi.update_np(piece.ints)
        if string_count:
            strings = piece.strings
            assert strings is not None
            limit = self.spec.fi_max_size
            if piece.longest > limit:
                strings = [text[0:limit] for text in strings]
            fi.update_str_list(strings)
        for label, count in (("True", piece.true), ("False", piece.false)):
            while count > 0:
                chunk = min(count, _BOOL_CHUNK)
                fi.update_str_list([label] * chunk)
                count -= chunk
        self.successes += float_count + int_count + string_count

    def metrics(self) -> dict[str, Metric]:
        return self.spec.metrics_of(self)

    def view(self) -> ColumnProfileView:
        return ColumnProfileView(self.metrics(), self.successes, self.failures)

    def write_components(self, components: Any, plan: list[tuple[int, str, int, int]]) -> None:
        """Fill a ``ChunkMessage.metric_components`` map as whylogs' serializers would;
        ``plan`` is :meth:`ColumnSpec.plan` for the profile's index."""
        for index, attribute, kind, type_id in plan:
            value = getattr(self, attribute)
            message = components[index]
            if kind == _INT:
                message.n = value
            elif kind == _FLOAT:
                message.d = value
            elif kind == _KLL:
                message.kll.sketch = value.serialize() if value is not None else self.spec.empty_kll
            elif kind == _HLL:
                message.hll.sketch = value.serialize_compact()
            else:
                message.frequent_items.sketch = value.serialize()
            if type_id:
                message.type_id = type_id


def _combine(
    n_a: int, mean_a: float, m2_a: float, n_b: int, mean_b: float, m2_b: float
) -> tuple[int, float, float]:
    """whylogs' merge of two (count, mean, M2): its parallel algorithm, or Welford's
    update for a single value (then ``mean_b`` is the value), step for step."""
    if n_b == 1:
        n = n_a + 1
        delta = mean_b - mean_a
        mean = mean_a + delta / n
        return n, mean, m2_a + delta * (mean_b - mean)
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = (mean_a * n_a + mean_b * n_b) / (n_a + n_b)
    return n, mean, m2_a + m2_b + delta**2 * n_a * n_b / n


class ColumnState:
    """One column of one profile as real whylogs metrics, for metrics a
    :class:`RawColumn` does not cover."""

    __slots__ = ("metrics", "successes", "failures", "seen")

    def __init__(self, metrics: dict[str, Metric]) -> None:
        self.metrics = metrics
        self.successes = 0
        self.failures = 0
        # Whether any value came for the column yet (a declared column may wait).
        self.seen = False

    def update(self, column: PreprocessedColumn) -> None:
        """What ``ColumnProfile`` does with one preprocessed column."""
        for metric in self.metrics.values():
            result = metric.columnar_update(column)
            self.successes += result.successes
            self.failures += result.failures

    def view(self) -> ColumnProfileView:
        return ColumnProfileView(self.metrics, self.successes, self.failures)


class ProfileTemplate:
    """The metrics of each column of one schema, resolved once per ``(column, dtype)``.

    :param schema: a schema :func:`supports` accepts, or ``None`` for whylogs' default.
    """

    def __init__(self, schema: DatasetSchema | None) -> None:
        if not supports(schema):
            raise ValueError("this schema needs whylogs' own DatasetProfile.track")
        self._schema = schema if schema is not None else DatasetSchema()
        self._specs: dict[tuple[str, np.dtype | None], ColumnSpec] = {}
        self.declared: tuple[str, ...] = tuple(self._schema.types)

    def spec(self, name: str, dtype: np.dtype | None) -> ColumnSpec:
        spec = self._specs.get((name, dtype))
        if spec is None:
            spec = self._specs[(name, dtype)] = self._resolve(name, dtype)
        return spec

    def new_column(self, name: str, dtype: np.dtype | None) -> RawColumn | ColumnState:
        """Fresh metrics for column ``name`` first met with values of ``dtype``."""
        return self.spec(name, dtype).new_column()

    def _resolve(self, name: str, dtype: np.dtype | None) -> ColumnSpec:
        schema = self._schema
        # A declared column keeps its declared type whatever the values, as in whylogs.
        column_schema = schema.get(name) or ColumnSchema(
            dtype=dtype,
            cfg=schema.default_configs,
            resolver=schema.resolvers,
            validators=schema.validators,
            type_mapper=schema.type_mapper,
        )
        metrics = column_schema.get_metrics(name)
        unknown = [type(m).__name__ for m in metrics.values() if type(m) not in STANDARD_METRICS]
        if unknown:
            raise ValueError(f"column {name!r} resolves to custom metrics: {unknown}")
        return ColumnSpec(metrics)

    def new_profile(self) -> dict[str, RawColumn | ColumnState]:
        """The columns of a new profile: those the schema declares, empty."""
        return {name: self.new_column(name, None) for name in self.declared}
