"""Profiles kept as plain metric dictionaries, fed below whylogs' ``track``.

whylogs resolves a column's metrics from the schema every time a profile meets the
column (tens of milliseconds for a new profile of twenty columns), and preprocesses
every column on every ``track`` call. Here each column's metrics are resolved once per
``(column, dtype)`` into a template that is never updated, fresh profiles are cloned
from it in microseconds, and the preprocessed pieces of :mod:`._columns` go straight to
each metric's ``columnar_update``: the very update ``track`` would have made.

Only schemas whose metrics are whylogs' standard ones take this route
(:func:`supports`); a schema with segments, validators, UDFs or custom metrics goes
through ``DatasetProfile.track`` instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import numpy as np
import whylogs_sketching as ds
from whylogs.core import DatasetProfileView, DatasetSchema
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

__all__ = ["ColumnState", "ProfileTemplate", "supports", "view_of"]

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
        # The sketch does not tell its lg_max_k; its empty serialized form keeps it.
        empty = value.serialize()
        return lambda: ds.frequent_strings_sketch.deserialize(empty)
    return lambda: copy.deepcopy(value)


def _component_factory(component: MetricComponent) -> Callable[[], MetricComponent]:
    # Building a component looks up its aggregator and serializers in registries;
    # cloning the template's attributes skips that and is otherwise the same object.
    kind = type(component)
    state = dict(component.__dict__)
    make_value = _value_factory(component._value)

    def fresh() -> MetricComponent:
        clone = object.__new__(kind)
        clone.__dict__.update(state)
        clone._value = make_value()
        return clone

    return fresh


def metric_factory(template: Metric) -> Callable[[], Metric]:
    """A function returning a new metric equal to ``template`` as it was when empty."""
    kind = type(template)
    if kind is UnicodeRangeMetric:
        return _unicode_range_factory(template)
    fixed: dict[str, Any] = {}
    parts: dict[str, Callable[[], MetricComponent]] = {}
    for name, value in template.__dict__.items():
        if isinstance(value, MetricComponent):
            parts[name] = _component_factory(value)
        else:
            fixed[name] = value

    def fresh() -> Metric:
        clone = object.__new__(kind)
        state = dict(fixed)
        for name, make in parts.items():
            state[name] = make()
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


class ColumnState:
    """One column of one profile: its metrics and whylogs' success/failure counts."""

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
        self._factories: dict[tuple[str, np.dtype | None], dict[str, Callable[[], Metric]]] = {}
        self.declared: tuple[str, ...] = tuple(self._schema.types)

    def new_column(self, name: str, dtype: np.dtype | None) -> ColumnState:
        """Fresh metrics for column ``name`` first met with values of ``dtype``."""
        factories = self._factories.get((name, dtype))
        if factories is None:
            factories = self._factories[(name, dtype)] = self._resolve(name, dtype)
        return ColumnState({namespace: make() for namespace, make in factories.items()})

    def _resolve(self, name: str, dtype: np.dtype | None) -> dict[str, Callable[[], Metric]]:
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
        return {namespace: metric_factory(metric) for namespace, metric in metrics.items()}

    def new_profile(self) -> dict[str, ColumnState]:
        """The columns of a new profile: those the schema declares, empty."""
        return {name: self.new_column(name, None) for name in self.declared}


def view_of(
    columns: dict[str, ColumnState], dataset_timestamp: datetime, creation_timestamp: datetime
) -> DatasetProfileView:
    """The view ``DatasetProfile.view()`` would give for these columns."""
    return DatasetProfileView(
        columns={name: state.view() for name, state in columns.items()},
        dataset_timestamp=dataset_timestamp,
        creation_timestamp=creation_timestamp,
        metrics={},
        metadata={},
    )
