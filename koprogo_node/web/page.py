"""The overview page: live totals and a chart of recent hours.

Plain HTML with a few lines of JavaScript that poll the JSON API; works with
no internet access (no CDN, no external fonts).
"""

from __future__ import annotations

from html import escape

from ..config.model import NodeConfig

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · koprogo-node</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem auto; max-width: 960px;
  color: #222; padding: 0 1rem; }}
.tiles {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr));
  gap: .75rem; }}
.tile {{ border: 1px solid #ddd; border-radius: 8px; padding: .75rem; }}
.tile b {{ display: block; font-size: 1.6rem; }}
small, .muted {{ color: #666; }}
img {{ width: 100%; height: auto; margin-top: 1rem; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="muted">Building <span>{building}</span> · data time <span id="data-time">…</span>
· <span id="ingest">…</span></p>
<div class="tiles">
 <div class="tile">Power now<b id="power">–</b><small>kW, all lots</small></div>
 <div class="tile">Electricity today<b id="elec">–</b><small>kWh imported</small></div>
 <div class="tile">Exported today<b id="export">–</b><small>kWh</small></div>
 <div class="tile">Water today<b id="water">–</b><small>litres</small></div>
 <div class="tile">Gas today<b id="gas">–</b><small>m³</small></div>
</div>
<img id="chart" src="/chart.svg?hours=24" alt="Last 24 hours: power and water">
<p class="muted">Ledger block <span id="height">–</span> ·
rejected inputs <span id="rejects">–</span> · JSON: <a href="/api/v1/status">status</a>,
<a href="/api/v1/sensors">sensors</a></p>
<script>
const fmt = (v, d) => v === null || v === undefined ? "–" :
  Number(v).toLocaleString("fr-BE", {{maximumFractionDigits: d}});
const set = (id, text) => document.getElementById(id).textContent = text;
async function refresh() {{
  try {{
    const b = await (await fetch("/api/v1/building")).json();
    const s = await (await fetch("/api/v1/status")).json();
    set("power", fmt(b.power_kw, 2));
    set("elec", fmt(b.today.electricity_import, 1));
    set("export", fmt(b.today.electricity_export, 1));
    set("water", fmt((b.today.water || 0) * 1000, 0));
    set("gas", fmt(b.today.gas, 2));
    set("data-time", b.data_time_ms ?
      new Date(b.data_time_ms).toLocaleString("fr-BE") : "no data yet");
    set("ingest", fmt(s.ingest.rate_per_s, 1) + " readings/s");
    set("height", s.ledger.height);
    const r = Object.values(s.ingest.rejects_by_reason).reduce((a, n) => a + n, 0);
    set("rejects", r);
  }} catch (e) {{ set("ingest", "node unreachable"); }}
}}
refresh(); setInterval(refresh, 2000);
setInterval(() => {{
  document.getElementById("chart").src = "/chart.svg?hours=24&t=" + Date.now();
}}, 10000);
</script>
</body></html>
"""


def render_page(node: NodeConfig) -> str:
    """The overview page for this building."""
    title = escape(node.name or node.building_id)
    return _PAGE.format(title=title, building=escape(node.building_id))
