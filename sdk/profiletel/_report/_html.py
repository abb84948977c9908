"""The report page: one HTML file holding its styles, script, charts and data.

Nothing in the page refers to another file or host: charts are inline SVG, the favicon is an
empty ``data:`` URL, and the figures are a JSON block that the small script reads to show
any bucket's table.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from html import escape
from typing import Any, Final

from .._time import iso_utc
from ._drift import DRIFT_THRESHOLD
from ._model import ColumnSeries, GroupReport
from ._svg import Line, chart

__all__ = ["render_page", "TYPE_LETTERS", "format_number"]

DATA_ELEMENT_ID: Final = "profiletel-data"
TYPE_LETTERS: Final = {"integral": "i", "fractional": "f", "string": "s", "boolean": "b",
                       "object": "o", "tensor": "t"}
# Above this many (bucket, column) cells the JSON keeps 7 significant digits instead of
# every digit, which keeps a year of hourly buckets of 20 columns under 20 MB.
_FULL_PRECISION_CELLS: Final = 50_000
_SHORT_DIGITS: Final = 7
_MISSING_LISTED: Final = 12
_TABLE_HEADER: Final = ("column", "count", "nulls", "types", "mean", "min", "max", "distinct",
                        "p5", "p95", "drift vs previous", "drift vs baseline")


def format_number(value: float | None) -> str:
    """A figure as ``profiletel show`` prints it: whole numbers with separators, others
    with three decimals, ``-`` for none."""
    if value is None:
        return "-"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3f}"


def render_page(
    groups: Sequence[GroupReport],
    *,
    title: str,
    source: str,
    baseline_label: str,
    threshold: float = DRIFT_THRESHOLD,
) -> str:
    """The whole HTML document for ``groups``."""
    cells = sum(len(g.buckets) * len(g.columns) for g in groups)
    digits = None if cells <= _FULL_PRECISION_CELLS else _SHORT_DIGITS
    data = {
        "source": source,
        "baseline": baseline_label,
        "threshold": threshold,
        "groups": [_group_data(group, digits) for group in groups],
    }
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="meta">Profiles under <code>{escape(source)}</code>. Drift is the '
            f"Hellinger distance between a bucket and the bucket before it, and between a "
            f"bucket and the baseline ({escape(baseline_label)}); scores of "
            f"{threshold:g} and above are marked.</p>"]
    body += [_group_section(index, group, baseline_label, threshold)
             for index, group in enumerate(groups)]
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{_STYLE}</style></head><body>"
        + "".join(body)
        + f'<script type="application/json" id="{DATA_ELEMENT_ID}">{payload}</script>'
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )


def group_heading(group: GroupReport) -> str:
    heading = f"dataset {group.dataset_id}"
    if group.segment is not None:
        segment = ", ".join(f"{k}={v}" for k, v in group.segment) or "(no segment)"
        heading += f", segment {segment}"
    return heading


def _group_section(index: int, group: GroupReport, baseline_label: str, threshold: float) -> str:
    buckets = group.buckets
    missing = group.missing
    length = _duration(group.bucket_ms) if group.bucket_ms else "unknown length"
    parts = [
        f'<section class="group" data-group="{index}">',
        f"<h2>{escape(group_heading(group))}</h2>",
        f'<p class="meta">{group.profiles:,} profile(s) in {len(buckets):,} bucket(s) of '
        f"{length} from {iso_utc(buckets[0])} to {iso_utc(buckets[-1])}; "
        f"{len(missing):,} bucket(s) missing{_missing_text(missing)}.</p>",
        "<h3>Overview</h3>",
        _overview_table(group, threshold),
        "<h3>Columns that drifted most</h3>",
        _drift_table(group, threshold),
        "<h3>One bucket</h3>",
        _bucket_picker(index, group),
        _bucket_table(group, len(buckets) - 1),
        "<h3>Columns over time</h3>",
        f'<p class="meta">Click a chart to show that bucket above. Baseline: '
        f"{escape(baseline_label)}.</p>",
    ]
    parts += [_column_block(group, series, threshold) for series in group.columns.values()]
    parts.append("</section>")
    return "".join(parts)


def _missing_text(missing: list[int]) -> str:
    if not missing:
        return ""
    listed = ", ".join(iso_utc(start) for start in missing[:_MISSING_LISTED])
    more = f" and {len(missing) - _MISSING_LISTED:,} more" if len(missing) > _MISSING_LISTED else ""
    return f" ({listed}{more})"


def _duration(ms: int) -> str:
    for unit, size in (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000)):
        if ms % size == 0:
            count = ms // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{ms / 1000:g} s"


def _overview_table(group: GroupReport, threshold: float) -> str:
    rows = []
    for series in group.columns.values():
        counts = [c for c in series.count if c is not None]
        covered = len(counts)
        per_bucket = (f"{min(counts):,} / {statistics.median(counts):,.0f} / {max(counts):,}"
                      if counts else "-")
        best = series.max_drift()
        drift = f"{best[0]:.3f}" if best else "-"
        css = ' class="drifted"' if best and best[0] >= threshold else ""
        rows.append(
            f"<tr><td>{escape(series.name)}</td><td>{escape(series.inferred_type)}</td>"
            f"<td>{per_bucket}</td><td>{covered:,}</td>"
            f"<td>{len(group.buckets) - covered + len(group.missing):,}</td>"
            f"<td{css}>{drift}</td></tr>"
        )
    return (
        '<table class="overview"><thead><tr><th>column</th><th>type</th>'
        "<th>rows per bucket (min / median / max)</th><th>buckets covered</th>"
        "<th>buckets missing</th><th>highest drift</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
    )


def _drift_table(group: GroupReport, threshold: float) -> str:
    ranked = []
    for series in group.columns.values():
        best = series.max_drift()
        if best is None:
            continue
        above = sum(
            1 for a, b in zip(series.drift_previous, series.drift_baseline, strict=True)
            if (a is not None and a >= threshold) or (b is not None and b >= threshold)
        )
        ranked.append((best[0], series.name, best[1], best[2], above))
    if not ranked:
        return '<p class="meta">No column could be compared between buckets.</p>'
    ranked.sort(key=lambda item: (-item[0], item[1]))
    rows = "".join(
        f'<tr class="{"drifted" if score >= threshold else ""}"><td>{rank}</td>'
        f"<td>{escape(name)}</td><td>{score:.3f}</td><td>{iso_utc(group.buckets[index])}</td>"
        f"<td>{against}</td><td>{above:,}</td></tr>"
        for rank, (score, name, index, against, above) in enumerate(ranked, start=1)
    )
    return (
        '<table class="drift"><thead><tr><th>#</th><th>column</th><th>highest score</th>'
        "<th>at bucket</th><th>against</th><th>buckets at or above threshold</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _bucket_picker(index: int, group: GroupReport) -> str:
    last = len(group.buckets) - 1
    options = "".join(
        f'<option value="{i}"{" selected" if i == last else ""}>{iso_utc(start)}</option>'
        for i, start in enumerate(group.buckets)
    )
    return (f'<label>bucket <select class="bucket-picker" data-group="{index}">{options}'
            "</select></label>")


def bucket_rows(group: GroupReport, index: int) -> list[tuple[str, ...]]:
    """The bucket table's cells for bucket ``index``, as text (``show``'s formats)."""
    rows: list[tuple[str, ...]] = []
    for series in group.columns.values():
        if series.count[index] is None:
            continue
        types = series.types[index] or {}
        rows.append((
            series.name,
            f"{series.count[index]:,}",
            f"{series.nulls[index]:,}",
            " ".join(f"{TYPE_LETTERS.get(k, k)}:{n:,}" for k, n in types.items()) or "-",
            format_number(series.mean[index]),
            format_number(series.minimum[index]),
            format_number(series.maximum[index]),
            "-" if series.distinct[index] is None else f"{series.distinct[index]:,.0f}",
            format_number(series.p5[index]),
            format_number(series.p95[index]),
            _score(series.drift_previous[index]),
            _score(series.drift_baseline[index]),
        ))
    return rows


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _bucket_table(group: GroupReport, index: int) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in _TABLE_HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in bucket_rows(group, index)
    )
    return (f'<table class="bucket"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _column_block(group: GroupReport, series: ColumnSeries, threshold: float) -> str:
    times, gap = group.buckets, group.bucket_ms
    null_ratio = _ratio(series.nulls, series.count)
    nan_ratio = _ratio(series.nans, series.count)
    charts = [
        chart("rows", times, gap, [Line(series.count, "c0", "rows")]),
        chart("null (NaN included) and NaN ratio", times, gap,
              [Line(null_ratio, "c0", "null ratio"), Line(nan_ratio, "c1", "NaN ratio")],
              y_range=(0.0, max([1e-9, *(v for v in null_ratio + nan_ratio if v)])),
              percent=True),
    ]
    if any(v is not None for v in series.mean):
        charts.append(chart("mean, p5–p95", times, gap, [Line(series.mean, "c0", "mean")],
                            band=(series.p5, series.p95)))
    charts.append(chart("distinct (estimate)", times, gap,
                        [Line(series.distinct, "c0", "distinct")]))
    if series.top_items:
        lines = [Line(shares, f"c{i}", f"share of {value!r}")
                 for i, (value, shares) in enumerate(series.top_items.items())]
        labels = ", ".join(escape(repr(value)) for value in series.top_items)
        charts.append(chart("top items' share", times, gap, lines, y_range=(0.0, 1.0),
                            percent=True) + f'<p class="legend">{labels}</p>')
    charts.append(chart("drift vs previous / baseline", times, gap,
                        [Line(series.drift_previous, "c0", "vs previous bucket"),
                         Line(series.drift_baseline, "c2", "vs baseline")],
                        y_range=(0.0, 1.0), threshold=threshold))
    best = series.max_drift()
    flag = ' <span class="flag">drift</span>' if best and best[0] >= threshold else ""
    return (
        f'<div class="column"><h4>{escape(series.name)} '
        f'<span class="type">{escape(series.inferred_type)}</span>{flag}</h4>'
        f'<div class="charts">{"".join(f"<div>{c}</div>" for c in charts)}</div></div>'
    )


def _ratio(part: list[int | None], whole: list[int | None]) -> list[float | None]:
    return [None if p is None or not w else p / w for p, w in zip(part, whole, strict=True)]


def _group_data(group: GroupReport, digits: int | None) -> dict[str, Any]:
    def numbers(values: Sequence[float | None]) -> list[float | None]:
        return [_compact(v, digits) for v in values]

    columns = {}
    for name, s in group.columns.items():
        columns[name] = {
            "type": s.inferred_type,
            "count": s.count,
            "nulls": s.nulls,
            "nans": s.nans,
            "types": [None if t is None else " ".join(
                f"{TYPE_LETTERS.get(k, k)}:{n}" for k, n in t.items()) for t in s.types],
            "mean": numbers(s.mean),
            "min": numbers(s.minimum),
            "max": numbers(s.maximum),
            "p5": numbers(s.p5),
            "p95": numbers(s.p95),
            "distinct": numbers(s.distinct),
            "drift_previous": [_compact(v, 4) for v in s.drift_previous],
            "drift_baseline": [_compact(v, 4) for v in s.drift_baseline],
            "top_items": {k: [_compact(v, 4) for v in shares] for k, shares in
                          s.top_items.items()},
        }
    return {
        "dataset_id": group.dataset_id,
        "segment": None if group.segment is None else [list(kv) for kv in group.segment],
        "buckets": group.buckets,
        "bucket_ms": group.bucket_ms,
        "missing": group.missing,
        "columns": columns,
    }


def _compact(value: float | None, digits: int | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value if digits is None else float(f"{value:.{digits}g}")


_STYLE: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px}h2{font-size:19px;border-bottom:2px solid #d6dbe4;padding-bottom:4px;
margin-top:36px}h3{font-size:16px;margin:20px 0 8px}h4{margin:14px 0 4px;font-size:14px}
.meta{color:#566074}code{background:#f1f3f7;padding:0 3px}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d6dbe4;padding:3px 8px;text-align:right}
th{background:#f1f3f7}td:first-child,th:first-child{text-align:left}
table.drift td:nth-child(2),table.overview td:nth-child(2){text-align:left}
.drifted,tr.drifted td{background:#fde2e1}
.charts{display:flex;flex-wrap:wrap;gap:6px}.charts>div{border:1px solid #e6e9ef}
.type{color:#566074;font-weight:normal}.flag{background:#c62828;color:#fff;padding:0 5px;
border-radius:3px;font-size:12px}.legend{margin:0 4px;font-size:11px;color:#566074}
svg.chart{display:block;cursor:crosshair}svg .title{font-size:11px;fill:#1d2330}
svg .axis{font-size:10px;fill:#566074}svg .plot{fill:#fbfcfd;stroke:#e6e9ef}
svg .line{fill:none;stroke-width:1.3}svg .c0{stroke:#1f5fbf}svg .c1{stroke:#e08a00}
svg .c2{stroke:#7b3fb8}svg .band{fill:#1f5fbf;opacity:.18}
svg .threshold{stroke:#c62828;stroke-dasharray:3 3}svg .above{fill:#c62828}
svg .cursor{stroke:#8a93a6;stroke-width:1;stroke-dasharray:2 2}
"""

# Shows the picked bucket's figures, formatted like ``profiletel show`` (and like
# bucket_rows), and moves a cursor over the charts.
_SCRIPT: Final = """
(function(){
var data=JSON.parse(document.getElementById('profiletel-data').textContent);
var letters={integral:'i',fractional:'f',string:'s',boolean:'b',object:'o',tensor:'t'};
function whole(v){return v.toLocaleString('en-US',{maximumFractionDigits:0});}
function num(v){if(v===null||v===undefined)return '-';
 if(v===Math.trunc(v)&&Math.abs(v)<1e15)return whole(v);
 return v.toLocaleString('en-US',{minimumFractionDigits:3,maximumFractionDigits:3});}
function score(v){return v===null||v===undefined?'-':v.toFixed(3);}
function types(t){if(!t)return '-';return t.split(' ').map(function(p){var kv=p.split(':');
 return kv[0]+':'+whole(Number(kv[1]));}).join(' ');}
function show(section,index){
 var g=data.groups[Number(section.dataset.group)];var rows=[];
 Object.keys(g.columns).forEach(function(name){var c=g.columns[name];
  if(c.count[index]===null)return;
  rows.push([name,whole(c.count[index]),whole(c.nulls[index]),types(c.types[index]),
   num(c.mean[index]),num(c.min[index]),num(c.max[index]),
   c.distinct[index]===null?'-':whole(Math.round(c.distinct[index])),num(c.p5[index]),
   num(c.p95[index]),score(c.drift_previous[index]),score(c.drift_baseline[index])]);});
 var body=section.querySelector('table.bucket tbody');body.textContent='';
 rows.forEach(function(r){var tr=document.createElement('tr');r.forEach(function(cell){
  var td=document.createElement('td');td.textContent=cell;tr.appendChild(td);});
  body.appendChild(tr);});
 section.querySelector('select.bucket-picker').value=String(index);
 var t=g.buckets[index];
 section.querySelectorAll('svg.chart').forEach(function(svg){
  var t0=Number(svg.dataset.t0),t1=Number(svg.dataset.t1);
  var x=Number(svg.dataset.left)+(t1>t0?(t-t0)/(t1-t0):0.5)*Number(svg.dataset.plotWidth);
  var line=svg.querySelector('line.cursor');
  if(!line){line=document.createElementNS('http://www.w3.org/2000/svg','line');
   line.setAttribute('class','cursor');line.setAttribute('y1','16');
   line.setAttribute('y2',String(svg.height.baseVal.value-14));svg.appendChild(line);}
  line.setAttribute('x1',x.toFixed(1));line.setAttribute('x2',x.toFixed(1));});}
function nearest(buckets,t){var lo=0,hi=buckets.length-1;
 while(lo<hi){var mid=(lo+hi)>>1;if(buckets[mid]<t)lo=mid+1;else hi=mid;}
 if(lo>0&&t-buckets[lo-1]<buckets[lo]-t)lo-=1;return lo;}
document.querySelectorAll('section.group').forEach(function(section){
 var g=data.groups[Number(section.dataset.group)];
 section.querySelector('select.bucket-picker').addEventListener('change',function(e){
  show(section,Number(e.target.value));});
 section.querySelectorAll('svg.chart').forEach(function(svg){
  svg.addEventListener('click',function(e){var box=svg.getBoundingClientRect();
   var f=(e.clientX-box.left-Number(svg.dataset.left))/Number(svg.dataset.plotWidth);
   var t0=Number(svg.dataset.t0),t1=Number(svg.dataset.t1);
   show(section,nearest(g.buckets,t0+Math.min(1,Math.max(0,f))*(t1-t0)));});});
 show(section,g.buckets.length-1);});
})();
"""
