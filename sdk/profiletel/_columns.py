"""Turn logged rows and DataFrames into columns that whylogs profiles exactly as if each
column held the logged Python values with ``dtype=object``.

Two routes:

- :func:`prepare_rows` and :func:`prepare_frame` read a whole batch, which may span many
  buckets, once per column, and cut it into one piece per bucket: a :class:`Plain` for
  the raw columns of :mod:`._tracking` (:meth:`BatchColumn.plain`, with each bucket's
  mean and variance computed for all buckets in a few numpy passes), or a whylogs
  ``PreprocessedColumn`` for real whylogs metrics (:meth:`BatchColumn.piece`). Plain
  values (``int``, ``float``, ``str``, ``bool``, ``None``) are classified here with
  numpy, the way whylogs' own preprocessing classifies them one by one; any other value
  makes its column go through whylogs' preprocessing itself. Preparing never touches a
  profile, so a batch that fails here can still be tracked the careful way.
- :func:`rows_to_frame` builds a DataFrame for whylogs' ``track``: the careful route.

A column whose values all share one type of ``int`` or ``float`` is resolved as
``int64`` or ``float64`` (whylogs' integral and fractional metric sets); anything else
as ``object``, so an ``int`` beside a ``None`` still counts as integral and a NaN as NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from operator import itemgetter
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd
from whylogs.core.preprocessing import PreprocessedColumn

__all__ = [
    "PLAIN_TYPES",
    "BatchColumn",
    "Piece",
    "Plain",
    "Stats",
    "column_array",
    "column_name",
    "null_piece",
    "nulls",
    "prepare_frame",
    "prepare_rows",
    "rows_to_frame",
]

# Values of these types do not make whylogs raise, except ints beyond int64 and strings
# with lone surrogates (checked by _trackable); a batch holding anything else is tracked
# so that one bad value cannot spoil the profile (see _buckets).
PLAIN_TYPES: Final = frozenset({int, float, str, bool, type(None)})
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

INT64: Final = np.dtype(np.int64)
FLOAT64: Final = np.dtype(np.float64)
OBJECT: Final = np.dtype(object)

# A piece of a column for one bucket: the dtype whylogs resolves its metrics from, and
# the preprocessed values.
Piece = tuple[Any, PreprocessedColumn]


class Stats(NamedTuple):
    """Count, mean and sum of squared deviations of one bucket's numbers; for a single
    number, ``mean`` is the number itself."""

    n: int
    mean: float
    m2: float


class Plain(NamedTuple):
    """One bucket's values of a column of plain values, classified as whylogs' pandas
    preprocessing classifies them (NaN is null and NaN, and is left out of ``floats``),
    with the statistics the metrics need computed for all buckets at once."""

    length: int
    null: int
    nan: int
    inf: int
    true: int
    false: int
    floats: np.ndarray | None
    float_stats: Stats | None
    ints: np.ndarray | None
    int_stats: Stats | None
    int_min: int
    int_max: int
    strings: list[str] | None
    longest: int  # the longest string's length, to know whether any needs cutting


def null_piece(count: int) -> Plain:
    """``count`` nulls."""
    return Plain(count, count, 0, 0, 0, 0, None, None, None, None, 0, 0, None, 0)


class _Missing:
    """A key absent from a row: null, like ``None``, but a column absent from every row
    of a bucket is left out of that bucket's profile."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()

# Codes of plain values in a mixed column.
_NULL, _NAN, _FLOAT, _INT, _TRUE, _FALSE, _STR, _ABSENT, _BOOL = range(9)
_CODE_OF_TYPE: Final = {
    type(None): _NULL,
    float: _FLOAT,
    int: _INT,
    bool: _BOOL,
    str: _STR,
    _Missing: _ABSENT,
}


def column_array(values: Sequence[Any]) -> tuple[np.ndarray, bool]:
    """Return the column as an array, and whether all its values are of plain types."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        kind = next(iter(kinds))
        if kind is float:
            return np.array(values, dtype=np.float64), True
        if kind is int:
            try:
                return np.array(values, dtype=np.int64), True
            except OverflowError:
                pass
    return _object_array(values), kinds <= PLAIN_TYPES and _trackable(values, kinds)


def _object_array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    try:
        array[:] = values
    except ValueError:
        # Equal-length sequences as values make numpy try to broadcast them.
        for index, value in enumerate(values):
            array[index] = value
    return array


def _trackable(values: Sequence[Any], kinds: set[type]) -> bool:
    """Whether whylogs can track these plain values without raising."""
    if int in kinds and not all(
        _INT64_MIN <= value <= _INT64_MAX for value in values if type(value) is int
    ):
        return False
    if str in kinds:
        text = "".join([value for value in values if type(value) is str])
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def column_name(key: Hashable) -> str:
    name = key if type(key) is str else str(key)
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            # A profile holding this column name could not be serialized at all.
            raise ValueError(f"column name {name!r} is not valid Unicode text") from None
    return name


def rows_to_frame(rows: Sequence[dict[Any, Any]]) -> tuple[pd.DataFrame, bool]:
    """Build one DataFrame from rows that may have different keys.

    A column missing from a row counts as null in that row. Non-string keys are
    converted with ``str()``; two keys that then collide raise ``ValueError``.

    :returns: the frame, and whether every value is of a plain type.
    """
    keys, same_keys = _keys(rows)
    columns: dict[str, np.ndarray] = {}
    all_plain = True
    for key in keys:
        values = [row[key] for row in rows] if same_keys else [row.get(key) for row in rows]
        array, plain = column_array(values)
        all_plain = all_plain and plain
        columns[_unique_name(key, columns)] = array
    return pd.DataFrame(columns, copy=False), all_plain


def _keys(rows: Sequence[dict[Any, Any]]) -> tuple[list[Any], bool]:
    first_keys = rows[0].keys()
    if all(row.keys() == first_keys for row in rows):
        return list(first_keys), True
    seen: dict[Any, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen), False


def _unique_name(key: Hashable, taken: dict[str, Any]) -> str:
    name = column_name(key)
    if name in taken:
        raise ValueError(f"column keys {key!r} and {name!r} both name the column {name!r}")
    return name


# The batch route


class BatchColumn:
    """One column of a batch, cut into pieces at ``bounds`` (one piece per bucket)."""

    __slots__ = ("name", "bounds")

    def __init__(self, name: str, bounds: np.ndarray) -> None:
        self.name = name
        self.bounds = bounds

    def piece(self, index: int) -> Piece | None:
        """The values of bucket ``index``, or ``None`` if the column is absent there."""
        raise NotImplementedError

    def plain(self, index: int) -> tuple[np.dtype, Plain] | None:
        """The values of bucket ``index`` as :class:`Plain`, or ``None`` if the column is
        absent there. Raises ``TypeError`` for a column of other values: use
        :meth:`piece`."""
        raise TypeError(f"column {self.name!r} holds values that are not plain")

    @property
    def is_plain(self) -> bool:
        return True


class _IntColumn(BatchColumn):
    __slots__ = ("values", "dtype", "_stats")

    def __init__(self, name: str, bounds: np.ndarray, values: np.ndarray, dtype: Any):
        super().__init__(name, bounds)
        self.values = values
        self.dtype = dtype
        self._stats = _IntStats(values, bounds)

    def plain(self, index: int) -> tuple[np.dtype, Plain] | None:
        low, high = int(self.bounds[index]), int(self.bounds[index + 1])
        stats, low_value, high_value = self._stats.at(index, self.values, low)
        return self.dtype, Plain(
            high - low,
            0,
            0,
            0,
            0,
            0,
            None,
            None,
            self.values[low:high],
            stats,
            low_value,
            high_value,
            None,
            0,
        )

    def piece(self, index: int) -> Piece | None:
        low, high = self.bounds[index], self.bounds[index + 1]
        column = PreprocessedColumn()
        column.len = int(high - low)
        column.numpy.ints = self.values[low:high]
        return self.dtype, column


class _FloatColumn(BatchColumn):
    """Floats: NaN counts as null and as NaN and is left out of the values, as whylogs
    does for a float column."""

    __slots__ = ("finite", "kept", "infinite", "dtype", "_stats")

    def __init__(self, name: str, bounds: np.ndarray, values: np.ndarray, dtype: Any):
        super().__init__(name, bounds)
        nan = np.isnan(values)
        self.finite = values[~nan] if nan.any() else values
        # Cumulative counts, so that each piece is two lookups.
        self.kept = _cumulative(~nan) if self.finite is not values else None
        infinite = np.isinf(values)
        self.infinite = _cumulative(infinite) if infinite.any() else None
        self.dtype = dtype
        cuts = self.kept[bounds] if self.kept is not None else bounds
        self._stats = _FloatStats(self.finite, cuts)

    def plain(self, index: int) -> tuple[np.dtype, Plain] | None:
        low, high = int(self.bounds[index]), int(self.bounds[index + 1])
        if self.kept is not None:
            start, stop = int(self.kept[low]), int(self.kept[high])
        else:
            start, stop = low, high
        missing = (high - low) - (stop - start)
        infinite = int(self.infinite[high] - self.infinite[low]) if self.infinite is not None else 0
        return self.dtype, Plain(
            high - low,
            missing,
            missing,
            infinite,
            0,
            0,
            self.finite[start:stop],
            self._stats.at(index, self.finite, start),
            None,
            None,
            0,
            0,
            None,
            0,
        )

    def piece(self, index: int) -> Piece | None:
        low, high = int(self.bounds[index]), int(self.bounds[index + 1])
        column = PreprocessedColumn()
        column.len = high - low
        if self.kept is not None:
            start, stop = int(self.kept[low]), int(self.kept[high])
            column.null_count = column.nan_count = (high - low) - (stop - start)
        else:
            start, stop = low, high
        column.numpy.floats = self.finite[start:stop]
        if self.infinite is not None:
            column.inf_count = int(self.infinite[high] - self.infinite[low])
        return self.dtype, column


class _StrColumn(BatchColumn):
    __slots__ = ("values", "longest")

    def __init__(self, name: str, bounds: np.ndarray, values: list[str]):
        super().__init__(name, bounds)
        self.values = values
        self.longest = max(map(len, values), default=0)

    def plain(self, index: int) -> tuple[np.dtype, Plain] | None:
        low, high = int(self.bounds[index]), int(self.bounds[index + 1])
        return OBJECT, Plain(
            high - low,
            0,
            0,
            0,
            0,
            0,
            None,
            None,
            None,
            None,
            0,
            0,
            self.values[low:high],
            self.longest,
        )

    def piece(self, index: int) -> Piece | None:
        low, high = self.bounds[index], self.bounds[index + 1]
        column = PreprocessedColumn()
        column.len = int(high - low)
        # Standard metrics treat list strings exactly as a pandas Series of strings.
        column.list.strings = self.values[low:high]
        return OBJECT, column


class _MixedColumn(BatchColumn):
    """Plain values of several types, classified with the rules of whylogs' pandas
    preprocessing of an object column."""

    __slots__ = (
        "codes",
        "ints",
        "floats",
        "strings",
        "dtype",
        "longest",
        "_counts",
        "_float_stats",
        "_int_stats",
    )

    def __init__(
        self, name: str, bounds: np.ndarray, values: Sequence[Any] | np.ndarray, dtype: Any
    ):
        super().__init__(name, bounds)
        codes = np.fromiter(
            (_CODE_OF_TYPE[type(value)] for value in values), dtype=np.int8, count=len(values)
        )
        objects = _object_array(values)
        floats = objects[codes == _FLOAT].astype(np.float64)
        float_at = np.flatnonzero(codes == _FLOAT)
        codes[float_at[np.isnan(floats)]] = _NAN
        bool_at = np.flatnonzero(codes == _BOOL)
        codes[bool_at] = np.where(objects[bool_at].astype(bool), _TRUE, _FALSE)
        # Raises OverflowError beyond int64, as whylogs would: the careful route follows.
        self.ints = objects[codes == _INT].astype(np.int64)
        self.floats = objects[codes == _FLOAT].astype(np.float64)
        self.strings: list[str] = objects[codes == _STR].tolist()
        self.codes = codes
        self.dtype = dtype
        # Per code, where each piece starts within the values of that code.
        self._counts = {
            code: np.searchsorted(np.flatnonzero(codes == code), bounds)
            for code in (_NULL, _NAN, _FLOAT, _INT, _TRUE, _FALSE, _STR, _ABSENT)
        }
        self._float_stats = _FloatStats(self.floats, self._counts[_FLOAT])
        self._int_stats = _IntStats(self.ints, self._counts[_INT])
        self.longest = max(map(len, self.strings), default=0)

    def plain(self, index: int) -> tuple[np.dtype, Plain] | None:
        low, high = int(self.bounds[index]), int(self.bounds[index + 1])
        counts = {code: self._count(code, index) for code in self._counts}
        sizes = {code: stop - start for code, (start, stop) in counts.items()}
        if sizes[_ABSENT] == high - low:
            return None
        float_start, float_stop = counts[_FLOAT]
        floats = self.floats[float_start:float_stop]
        int_start, int_stop = counts[_INT]
        int_stats, low_value, high_value = self._int_stats.at(index, self.ints, int_start)
        string_start, string_stop = counts[_STR]
        return self._dtype_of(sizes, high - low), Plain(
            high - low,
            sizes[_NULL] + sizes[_NAN] + sizes[_ABSENT],
            sizes[_NAN],
            int(np.isinf(floats).sum()) if len(floats) else 0,
            sizes[_TRUE],
            sizes[_FALSE],
            floats,
            self._float_stats.at(index, self.floats, float_start),
            self.ints[int_start:int_stop],
            int_stats,
            low_value,
            high_value,
            self.strings[string_start:string_stop] if sizes[_STR] else None,
            self.longest,
        )

    def _count(self, code: int, index: int) -> tuple[int, int]:
        cuts = self._counts[code]
        return int(cuts[index]), int(cuts[index + 1])

    def piece(self, index: int) -> Piece | None:
        low, high = int(self.bounds[index]), int(self.bounds[index + 1])
        absent = self._count(_ABSENT, index)
        if absent[1] - absent[0] == high - low:
            return None
        counts = {code: self._count(code, index) for code in self._counts}
        sizes = {code: stop - start for code, (start, stop) in counts.items()}
        column = PreprocessedColumn()
        column.len = high - low
        column.null_count = sizes[_NULL] + sizes[_NAN] + sizes[_ABSENT]
        column.nan_count = sizes[_NAN]
        start, stop = counts[_FLOAT]
        floats = self.floats[start:stop]
        column.inf_count = int(np.isinf(floats).sum()) if len(floats) else 0
        start, stop = counts[_INT]
        column.numpy.floats = floats
        column.numpy.ints = self.ints[start:stop]
        column.bool_count = sizes[_TRUE] + sizes[_FALSE]
        column.bool_count_where_true = sizes[_TRUE]
        if sizes[_STR]:
            start, stop = counts[_STR]
            column.list.strings = self.strings[start:stop]
        return self._dtype_of(sizes, high - low), column

    def _dtype_of(self, sizes: dict[int, int], length: int) -> np.dtype:
        if self.dtype is not None:
            return self.dtype
        # The dtype rows_to_frame would give this bucket's rows alone.
        if sizes[_INT] == length:
            return INT64
        if sizes[_FLOAT] + sizes[_NAN] == length:
            return FLOAT64
        return OBJECT


class _WhylogsColumn(BatchColumn):
    """Values of other types: whylogs' own preprocessing, run here for every piece so
    that a value it rejects surfaces before any profile is touched."""

    __slots__ = ("pieces",)

    def __init__(self, name: str, bounds: np.ndarray, series: pd.Series, present: np.ndarray):
        super().__init__(name, bounds)
        self.pieces: list[Piece | None] = []
        for index in range(len(bounds) - 1):
            low, high = int(bounds[index]), int(bounds[index + 1])
            if not present[low:high].any():
                self.pieces.append(None)
                continue
            self.pieces.append((series.dtype, PreprocessedColumn.apply(series.iloc[low:high])))

    def piece(self, index: int) -> Piece | None:
        return self.pieces[index]

    @property
    def is_plain(self) -> bool:
        return False


class _FloatStats:
    """Mean and sum of squared deviations of every bucket's numbers, in a few vectorized
    passes; whylogs computes them per call with ``mean()`` and ``var()``, which differ
    from these in the last bits only."""

    __slots__ = ("sizes", "means", "m2s")

    def __init__(self, values: np.ndarray, cuts: np.ndarray) -> None:
        sizes = np.diff(cuts)
        means = np.zeros(len(sizes))
        m2s = np.zeros(len(sizes))
        filled = sizes > 0
        if filled.any():
            numbers = values.astype(np.float64, copy=False)
            starts = cuts[:-1][filled]
            # Infinities make NaN means, as they do in whylogs.
            with np.errstate(invalid="ignore", over="ignore"):
                means[filled] = np.add.reduceat(numbers, starts) / sizes[filled]
                deviations = numbers - np.repeat(means, sizes)
                m2s[filled] = np.add.reduceat(deviations * deviations, starts)
        self.sizes: list[int] = sizes.tolist()
        self.means: list[float] = means.tolist()
        self.m2s: list[float] = m2s.tolist()

    def at(self, index: int, values: np.ndarray, start: int) -> Stats | None:
        size = self.sizes[index]
        if size > 1:
            return Stats(size, self.means[index], self.m2s[index])
        if size == 1:
            return Stats(1, values[start].item(), 0.0)
        return None


class _IntStats(_FloatStats):
    """As :class:`_FloatStats`, with each bucket's exact minimum and maximum."""

    __slots__ = ("lows", "highs")

    def __init__(self, values: np.ndarray, cuts: np.ndarray) -> None:
        super().__init__(values, cuts)
        lows = highs = np.zeros(len(cuts) - 1, dtype=np.int64)
        filled = np.diff(cuts) > 0
        if filled.any():
            starts = cuts[:-1][filled]
            lows, highs = lows.copy(), highs.copy()
            lows[filled] = np.minimum.reduceat(values, starts)
            highs[filled] = np.maximum.reduceat(values, starts)
        self.lows: list[int] = lows.tolist()
        self.highs: list[int] = highs.tolist()

    def at(  # type: ignore[override]
        self, index: int, values: np.ndarray, start: int
    ) -> tuple[Stats | None, int, int]:
        return super().at(index, values, start), self.lows[index], self.highs[index]


def nulls(count: int) -> PreprocessedColumn:
    """``count`` nulls, as whylogs preprocesses a column of ``None``."""
    column = PreprocessedColumn()
    column.len = column.null_count = count
    return column


def _cumulative(mask: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=counts[1:])
    return counts


def prepare_rows(
    rows: Sequence[dict[Any, Any]], bounds: Sequence[int] | np.ndarray
) -> list[BatchColumn]:
    """Read ``rows`` column by column; bucket ``i`` holds ``rows[bounds[i]:bounds[i+1]]``.

    :raises Exception: anything whylogs would raise on these values, or ``ValueError``
        for two keys that name the same column. Nothing is tracked yet when it raises.
    """
    cuts = np.asarray(bounds, dtype=np.int64)
    keys, same_keys = _keys(rows)
    values_by_key: Iterable[Sequence[Any]]
    if same_keys and len(keys) > 1:
        # One pass over the rows, transposed: faster than one pass per key.
        values_by_key = zip(*map(itemgetter(*keys), rows), strict=True)
    elif same_keys:
        values_by_key = ([row[key] for row in rows] for key in keys)
    else:
        values_by_key = ([row.get(key, MISSING) for row in rows] for key in keys)
    columns: dict[str, BatchColumn] = {}
    for key, values in zip(keys, values_by_key, strict=True):
        name = _unique_name(key, columns)
        columns[name] = _column_of_values(name, cuts, values, None)
    return list(columns.values())


def _column_of_values(
    name: str, cuts: np.ndarray, values: Sequence[Any] | np.ndarray, dtype: np.dtype | None
) -> BatchColumn:
    kinds = set(map(type, values))
    if len(kinds) == 1:
        kind = next(iter(kinds))
        if kind is int:
            try:
                return _IntColumn(name, cuts, np.array(values, dtype=np.int64), dtype or INT64)
            except OverflowError:
                pass
        elif kind is float:
            return _FloatColumn(name, cuts, np.array(values, dtype=np.float64), dtype or FLOAT64)
        elif kind is str:
            # The sketches take strings as UTF-8: a lone surrogate would fail there.
            "".join(values).encode("utf-8")
            return _StrColumn(name, cuts, values if type(values) is list else list(values))
    if kinds <= _CODE_OF_TYPE.keys():
        if str in kinds:
            "".join(value for value in values if type(value) is str).encode("utf-8")
        return _MixedColumn(name, cuts, values, dtype)
    objects = _object_array(values)
    present = np.fromiter((value is not MISSING for value in values), dtype=bool, count=len(values))
    if not present.all():
        objects[~present] = None
    return _WhylogsColumn(name, cuts, pd.Series(objects, dtype=object, copy=False), present)


def prepare_frame(frame: pd.DataFrame, bounds: Sequence[int] | np.ndarray) -> list[BatchColumn]:
    """Read a DataFrame column by column; bucket ``i`` holds rows ``bounds[i]`` to
    ``bounds[i+1]``. Metrics are resolved from each column's own dtype, as whylogs'
    ``track(pandas=...)`` does.

    :raises Exception: as :func:`prepare_rows`.
    """
    cuts = np.asarray(bounds, dtype=np.int64)
    columns: dict[str, BatchColumn] = {}
    everywhere = np.ones(len(frame), dtype=bool)
    for position, key in enumerate(frame.columns):
        name = _unique_name(key, columns)
        series = frame.iloc[:, position]
        dtype = series.dtype
        if dtype == INT64:
            columns[name] = _IntColumn(name, cuts, series.to_numpy(), dtype)
        elif dtype == FLOAT64:
            columns[name] = _FloatColumn(name, cuts, series.to_numpy(), dtype)
        elif dtype == OBJECT:
            columns[name] = _column_of_values(name, cuts, series.to_numpy(), OBJECT)
        else:
            columns[name] = _WhylogsColumn(name, cuts, series, everywhere)
    return list(columns.values())
