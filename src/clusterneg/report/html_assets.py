"""The report page's inline assets: Content-Security-Policy, CSS and the load script.

Nothing is fetched: the policy forbids every external source, the CSS and script are inline,
and the script marks the page ready for the browser test (``data-rows``, ``data-images``,
``data-ready`` on ``<body>``).
"""

from __future__ import annotations

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)
CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
 max-width:1180px;margin:0 auto;padding:18px 24px 60px;background:#fff}
h1{font-size:1.6em;margin:.2em 0}
h2{margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:4px}
.facts{color:#556}.verdict{background:#f3f6fb;border-left:5px solid #d62728;padding:10px 14px;
 font-size:1.05em}
table{border-collapse:collapse;margin:10px 0;font-size:.9em}
th,td{border:1px solid #dde;padding:4px 7px;vertical-align:top}th{background:#f5f6f8}
#results-table{font-size:.84em}#cluster-diagnostics th{text-align:left}
td.num{text-align:right}.v{white-space:nowrap}.chg{display:block;font-size:.8em;color:#667}
td.name{white-space:nowrap}
.real{color:#0a7a32;font-weight:600}.best{font-weight:700;background:#fff7e0}
tr.method td:first-child{color:#d62728;font-weight:700}
.figs{display:flex;flex-wrap:wrap;gap:12px}
.figs img{max-width:100%;height:auto;border:1px solid #eee}
.missing{color:#889;font-style:italic}.note{color:#556;font-size:.88em}
.cl{display:inline-block;font-size:.76em;background:#eef1f7;color:#334;border-radius:8px;
 padding:0 6px;margin-left:4px}
.hit{background:#e3f6e8}.hit::before{content:"\\2713 ";color:#0a7a32;font-weight:700}
.wide{overflow-x:auto}.scroll{overflow-x:auto;max-height:520px;overflow-y:auto}
.figs table{align-self:flex-start}
ul.items{margin:4px 0 8px;padding-left:20px}.example-user{margin-bottom:28px}
"""
SCRIPT = """
window.addEventListener("load", function () {
  var b = document.body;
  b.dataset.rows = document.querySelectorAll("#results-table tbody tr").length;
  var ok = 0;
  document.querySelectorAll("img").forEach(function (i) {
    if (i.complete && i.naturalWidth > 0) { ok += 1; }
  });
  b.dataset.images = ok;
  b.dataset.ready = "1";
});
"""
