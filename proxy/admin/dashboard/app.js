// zonegate-proxy dashboard: polls /admin/api/series once a second and draws the time series with
// uPlot (bundled, no CDN). Served under a strict CSP: no inline script, no external origin.
"use strict";

const charts = {};
const palette = ["#58a6ff", "#3fb950", "#d29922", "#f85149"];

function makeChart(id, series, yRange) {
  const el = document.getElementById(id);
  const opts = {
    width: el.clientWidth || 400,
    height: 180,
    scales: { x: { time: true }, y: yRange ? { range: yRange } : {} },
    axes: [{ stroke: "#8aa0b4", grid: { stroke: "#23303d" } }, { stroke: "#8aa0b4", grid: { stroke: "#23303d" } }],
    series: [{}].concat(series.map((name, i) => ({ label: name, stroke: palette[i % palette.length], width: 1.5 }))),
  };
  const data = [[]].concat(series.map(() => []));
  charts[id] = new uPlot(opts, data, el);
}

function setText(id, text, cls) {
  const el = document.getElementById(id);
  el.textContent = text;
  el.className = "value" + (cls ? " " + cls : "");
}

function fmtUptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return (d ? d + "d " : "") + (h ? h + "h " : "") + m + "m " + Math.floor(s % 60) + "s";
}

function render(body) {
  const s = body.samples;
  const xs = s.map(p => p.t);
  const col = k => s.map(p => p[k]);
  charts["chart-rps"].setData([xs, col("rps")]);
  charts["chart-latency"].setData([xs, col("p50_ms"), col("p95_ms"), col("p99_ms")]);
  charts["chart-errors"].setData([xs, col("error_rate")]);
  charts["chart-hits"].setData([xs, col("hit_rate")]);
  charts["chart-pool"].setData([xs, col("pool_busy"), col("pool_ready"), col("pool_waiting")]);
  charts["chart-lag"].setData([xs, col("invalidation_lag_ms")]);

  const h = body.health;
  document.getElementById("version").textContent = "v" + h.version + " (" + h.build + "), " + h.workers + " workers";
  setText("status", h.status, h.status === "ok" ? "ok" : h.status === "degraded" ? "warn" : "bad");
  const pg = h.postgres[0];
  setText("db", pg.connected ? "up, " + (pg.latency_ms || 0).toFixed(2) + " ms" : "down: " + (pg.error || "?"),
          pg.connected ? "ok" : "bad");
  setText("listen", h.listen.up ? "up, " + h.listen.notifications + " notifications" : "down", h.listen.up ? "ok" : "bad");
  setText("pool", h.pool.ready + " / " + h.pool.active + " / " + h.pool.waiting, h.pool.ready > 0 ? "ok" : "bad");
  setText("cache", h.cache.entries + " / " + (100 * h.cache.hit_rate).toFixed(1) + "%");
  const b = h.breakers[0];
  const r = h.resilience;
  setText("breaker", !b.enabled ? "off" : b.state.replace("_", "-") +
          (b.state === "closed" ? "" : ", retry in " + Math.ceil(b.retry_after_ms / 1000) + " s") +
          ", " + r.retries + " retries, " + r.shed + " shed",
          !b.enabled ? "muted" : b.state === "closed" ? "ok" : b.state === "open" ? "bad" : "warn");
  document.getElementById("breaker").title = b.last_error || "";
  const rl = h.rate_limit;
  if (!rl.enabled) {
    setText("ratelimit", "not configured", "muted");
  } else {
    const sum = (k) => rl.policies.reduce((a, p) => a + p[k], 0);
    const limited = sum("limited"), dry = sum("dry_run_limited");
    setText("ratelimit", rl.policies.length + (rl.policies.length === 1 ? " policy, " : " policies, ") +
            sum("allowed") + " allowed, " + limited + " limited" + (dry ? ", " + dry + " dry-run" : "") +
            ", " + sum("keys") + " keys", limited ? "warn" : "ok");
    document.getElementById("ratelimit").title = rl.policies.map((p) =>
      p.name + " (" + p.mode + "): " + p.quota + "/" + p.window_s + "s burst " + p.burst + " by " + p.key +
      " on " + p.routes.join(" ") + "; " + p.limited + " limited, " + p.keys + " keys").join("\n");
  }
  setText("uptime", fmtUptime(h.uptime_seconds));
  document.body.dataset.samples = String(s.length);
}

async function poll() {
  try {
    const r = await fetch("/admin/api/series", { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) {
      window.location.assign("/admin/");
      return;
    }
    if (r.ok) render(await r.json());
  } finally {
    setTimeout(poll, 1000);
  }
}

makeChart("chart-rps", ["req/s"]);
makeChart("chart-latency", ["p50", "p95", "p99"]);
makeChart("chart-errors", ["5xx share"], [0, 1]);
makeChart("chart-hits", ["hit rate"], [0, 1]);
makeChart("chart-pool", ["busy", "ready", "waiting"]);
makeChart("chart-lag", ["lag ms"]);
window.addEventListener("resize", () => {
  for (const id in charts) charts[id].setSize({ width: document.getElementById(id).clientWidth, height: 180 });
});
poll();
