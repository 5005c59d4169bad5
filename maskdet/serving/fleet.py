"""The fleet page (serve.py --db): every camera of monitor.py's store, its state, people and alerts.

/fleet is a static page that asks /api/fleet every few seconds; /api/fleet reads the store (SQLite file or
PostgreSQL URL) on each call, read-only (an SQLite file in mode=ro, a PostgreSQL session that refuses writes), so
the page works beside a running monitor.py or after it, with read access to the store only, and changes nothing.
A camera its run last reported live whose last frame is older than its down_after shows as down (its run has
stopped: see Store.summary).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from maskdet.serving.errors import documented

page_router = APIRouter()
api_router = APIRouter()
REFRESH_S = 2


def check_store(db: str) -> None:
    """serve.py --db at start: a path or URL that is not monitor.py's store (a text file, another program's
    database, mysql://) is one line (UserError) before the server starts, not a page whose every call fails."""
    from maskdet.fleet.store import Store

    Store.open(db, create=False).close()


def read_summary(db: str) -> dict:
    from maskdet.errors import UserError
    from maskdet.fleet.store import Store

    try:
        store = Store.open(db, create=False)
    except UserError as exc:
        raise HTTPException(503, f"the fleet store cannot be read: {exc}") from None
    try:
        return store.summary()
    finally:
        store.close()


@api_router.get("/api/fleet", summary="Every camera with its state, people in the last hour, totals per site, latest alerts "
                "and (privacy counts) latest periods",
                responses=documented(401, 404, 503, _404="no fleet store: serve.py was started without --db",
                                     _503="the store cannot be read (gone, not a monitor.py store, or its database is down)"))
async def fleet_summary(request: Request) -> dict:
    db = getattr(request.app.state, "fleet_db", None)
    if not db:
        raise HTTPException(404, "no fleet store: start serve.py with --db PATH_OR_URL (monitor.py's store)")
    return await run_in_threadpool(read_summary, db)


@page_router.get("/fleet", include_in_schema=False)
async def fleet_page() -> HTMLResponse:
    return HTMLResponse(PAGE)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>maskdet fleet</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; }
.state { font-weight: 600; padding: 0.1em 0.5em; border-radius: 0.6em; }
.live { background: #d6f5d6; color: #155215; }
.reconnecting, .connecting { background: #fff1c2; color: #6b5200; }
.note { color: #7a1010; font-size: 0.85em; margin-left: 0.4em; }
.down, .failed { background: #ffd6d6; color: #7a1010; }
.stopped, .starting, .done { background: #e6e6e6; color: #444; }
#error { color: #a00; }
</style></head>
<body>
<h1>Fleet</h1>
<p>Updated <span id="updated">never</span> (every REFRESH s). <span id="error"></span></p>
<h2>Sites</h2>
<table id="sites"><thead><tr><th>site</th><th>cameras</th><th>live</th><th>people (last hour)</th>
<th>mask worn correctly</th></tr></thead><tbody></tbody></table>
<h2>Cameras</h2>
<table id="cameras"><thead><tr><th>camera</th><th>site</th><th>zone</th><th>state</th><th>since</th>
<th>last frame</th><th>people (last hour)</th><th>mask worn correctly</th><th>frames</th></tr></thead><tbody></tbody></table>
<section id="periods-section" hidden>
<h2>Counts per period</h2>
<p>Cameras with <code>privacy: counts</code> keep nothing per person: only how many people each period saw, by verdict.</p>
<table id="periods"><thead><tr><th>period (UTC)</th><th>camera</th><th>site</th><th>zone</th><th>people</th>
<th>mask</th><th>no mask</th><th>mask worn wrong</th><th>mask worn correctly</th></tr></thead><tbody></tbody></table>
</section>
<h2>Latest alerts</h2>
<table id="alerts"><thead><tr><th>time (UTC)</th><th>camera</th><th>site</th><th>zone</th><th>verdict</th>
<th>confidence</th><th>delivery</th></tr></thead><tbody></tbody></table>
<script>
const token = sessionStorage.getItem("maskdet-token") || "";
const share = (v) => v === null || v === undefined ? "-" : Math.round(v * 100) + "%";
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function fill(id, items, render) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...items.map((item) => { const tr = document.createElement("tr"); render(tr, item); return tr; }));
}
async function refresh() {
  try {
    const response = await fetch("/api/fleet", { headers: token ? { Authorization: "Bearer " + token } : {} });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.status);
    fill("sites", data.sites, (tr, s) => {
      tr.dataset.site = s.site;
      cell(tr, s.site || "(none)"); cell(tr, s.cameras, "num"); cell(tr, s.live, "num");
      cell(tr, s.people_last_hour, "num people"); cell(tr, share(s.compliance), "num compliance");
    });
    fill("cameras", data.cameras, (tr, c) => {
      tr.dataset.camera = c.name;
      cell(tr, c.name); cell(tr, c.site); cell(tr, c.zone);
      const state = cell(tr, "");
      state.appendChild(Object.assign(document.createElement("span"), { className: "state " + c.state, textContent: c.state }));
      if (c.stale) state.appendChild(Object.assign(document.createElement("span"), { className: "note stale",
          textContent: "no report", title: "its monitor.py run stopped reporting it (no frame for longer than its down_after)" }));
      cell(tr, c.state_since + " UTC"); cell(tr, c.last_frame_at ? c.last_frame_at + " UTC" : "-", "last-frame");
      cell(tr, c.people_last_hour, "num people"); cell(tr, share(c.compliance), "num compliance");
      cell(tr, c.frames, "num");
    });
    const periods = data.periods || [];
    document.getElementById("periods-section").hidden = periods.length === 0;
    fill("periods", periods, (tr, p) => {
      tr.dataset.camera = p.camera;
      cell(tr, p.start + " +" + (p.period_s % 60 ? p.period_s + " s" : p.period_s / 60 + " min")); cell(tr, p.camera); cell(tr, p.site); cell(tr, p.zone);
      cell(tr, p.people, "num people"); cell(tr, p.with_mask, "num"); cell(tr, p.without_mask, "num");
      cell(tr, p.mask_weared_incorrect, "num"); cell(tr, share(p.compliance), "num compliance");
    });
    fill("alerts", data.alerts, (tr, a) => {
      tr.dataset.camera = a.camera;
      cell(tr, a.time); cell(tr, a.camera); cell(tr, a.site); cell(tr, a.zone); cell(tr, a.verdict);
      cell(tr, a.confidence.toFixed(2), "num"); cell(tr, a.delivery);
    });
    document.getElementById("updated").textContent = data.now + " UTC";
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = "cannot read the fleet: " + err.message;
  }
}
refresh();
setInterval(refresh, REFRESH * 1000);
</script>
</body></html>
""".replace("REFRESH", str(REFRESH_S))
