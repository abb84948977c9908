"""Turn a batch of logged rows into a DataFrame that whylogs profiles exactly as if
each column held the logged Python values with ``dtype=object``.

A column whose values all share one type of ``int``, ``float`` or ``str`` becomes a
typed array (whylogs' fast path, same counts and types); anything else stays an object
column, so an ``int`` beside a ``None`` still counts as integral and a NaN as NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = ["rows_to_frame", "column_array", "split_by_keys", "PLAIN_TYPES"]

# Values of these types do not make whylogs raise, except ints beyond int64 and strings
# with lone surrogates (checked by _trackable); a batch holding anything else is tracked
# so that one bad value cannot spoil the profile (see _buckets).
PLAIN_TYPES: Final = frozenset({int, float, str, bool, type(None)})
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


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
    array = np.empty(len(values), dtype=object)
    try:
        array[:] = values
    except ValueError:
        # Equal-length sequences as values make numpy try to broadcast them.
        for index, value in enumerate(values):
            array[index] = value
    return array, kinds <= PLAIN_TYPES and _trackable(values, kinds)


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


def split_by_keys(rows: Sequence[dict[Any, Any]]) -> list[Sequence[dict[Any, Any]]]:
    """Group rows by their set of keys, so that a column missing from a row is not
    counted in that row whatever else shares its batch (whylogs' rule for one row)."""
    first_keys = rows[0].keys()
    if all(row.keys() == first_keys for row in rows):
        return [rows]
    groups: dict[frozenset[Any], list[dict[Any, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())


def rows_to_frame(rows: Sequence[dict[Any, Any]]) -> tuple[pd.DataFrame, bool]:
    """Build one DataFrame from rows that may have different keys.

    A column missing from a row counts as null in that row. Non-string keys are
    converted with ``str()``; two keys that then collide raise ``ValueError``.

    :returns: the frame, and whether every value is of a plain type.
    """
    first_keys = rows[0].keys()
    same_keys = all(row.keys() == first_keys for row in rows)
    keys: list[Any]
    if same_keys:
        keys = list(first_keys)
    else:
        seen: dict[Any, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        keys = list(seen)

    columns: dict[str, np.ndarray] = {}
    all_plain = True
    for key in keys:
        values = [row[key] for row in rows] if same_keys else [row.get(key) for row in rows]
        array, plain = column_array(values)
        all_plain = all_plain and plain
        name = column_name(key)
        if name in columns:
            raise ValueError(f"row keys {key!r} and {name!r} both name the column {name!r}")
        columns[name] = array
    return pd.DataFrame(columns, copy=False), all_plain
