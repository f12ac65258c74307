// A strategy run on the dashboard: equity curve, fills on the candles, positions and open
// orders. REST (/api/run, /api/equity, /api/fills, /api/orders, /api/positions) for the
// snapshot, "trading" messages on /ws/events for what each instant changed (docs/web.md).
"use strict";

window.sessionflowTrading = function (dash) {
  const TZ = "America/New_York";
  const $ = (id) => document.getElementById(id);
  const day = new Intl.DateTimeFormat("sv-SE", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" });
  const state = { run: null, fills: [], points: 0 };
  let equityChart = null, equity = null, reloading = false;

  function makeChart() {
    equityChart = LightweightCharts.createChart($("equity-chart"), {
      autoSize: true,
      layout: { background: { color: "#171d24" }, textColor: "#d8dee6" },
      grid: { vertLines: { color: "#1f2933" }, horzLines: { color: "#1f2933" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      localization: { timeFormatter: (t) => dash.stamp.format(new Date(t * 1000)) + " ET" },
    });
    equity = equityChart.addLineSeries({ color: "#3b82f6", lineWidth: 2, title: "equity" });
  }

  function show(on) {
    $("trading-panel").hidden = !on;
    if (on && !equityChart) makeChart();
  }

  const money = (v) => (v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));

  function table(id, names, rows, sideAt) {
    const t = $(id);
    t.textContent = "";
    const head = t.insertRow();
    for (const n of names) { const th = document.createElement("th"); th.textContent = n; head.appendChild(th); }
    for (const r of rows) {
      const tr = t.insertRow();
      r.forEach((v, i) => {
        const td = tr.insertCell();
        td.textContent = v;
        if (i === sideAt) td.className = v;
      });
    }
    t.dataset.rows = String(rows.length);
  }

  function showPositions(positions) {
    table("positions", ["symbol", "qty", "avg price", "last", "value", "unrealised", "realised"],
      positions.map((p) => [p.symbol, p.quantity, money(p.avg_price), money(p.last_price), money(p.market_value),
        money(p.unrealised), money(p.realised)]));
  }

  function showOrders(orders) {
    table("orders", ["id", "symbol", "side", "type", "qty", "filled", "limit", "stop", "tif", "status", "submitted"],
      orders.map((o) => [o.id, o.symbol, o.side, o.type, o.quantity, o.filled_quantity, money(o.limit), money(o.stop),
        o.tif, o.status, dash.stamp.format(new Date(o.submitted_at))]), 2);
  }

  function showFills() {
    const last = state.fills.slice(-200).reverse(); // newest first; the REST answer has all
    table("fills", ["time", "symbol", "side", "qty", "price", "fee", "order"],
      last.map((f) => [dash.stamp.format(new Date(f.time)), f.symbol, f.side, f.quantity, money(f.price),
        money(f.commission), f.order_id]), 2);
    $("fills-count").textContent = `(${state.fills.length})`;
  }

  function showInfo(cash, equityNow, summary) {
    const r = state.run;
    if (!r) return;
    const params = Object.entries(r.params).map(([k, v]) => k + "=" + v).join(", ");
    let text = `${r.class} (${params}): cash ${money(cash)}`;
    if (equityNow !== null && equityNow !== undefined) text += `, equity ${money(equityNow)}`;
    if (summary) {
      const s = summary.statistics || {};
      text += `; finished${summary.complete ? "" : " (incomplete" + (summary.error ? ": " + summary.error : "") + ")"}` +
        `, final equity ${money(summary.final_equity)}` +
        (s.total_return !== undefined ? `, total return ${(100 * s.total_return).toFixed(2)}%` : "");
    }
    $("trading-info").textContent = text;
  }

  function setPoints(n) {
    state.points = n;
    $("equity-chart").dataset.points = String(n);
  }

  function markers(view) {
    // a fill sits on the candle of its bar: times floored to the interval (sessions open
    // on a quarter hour, so 1m, 5m and 15m windows are aligned to it)
    if (!view.symbol || !view.session) return [];
    const step = 60 * parseInt(view.interval, 10);
    const out = [];
    for (const f of state.fills) {
      if (f.symbol !== view.symbol) continue;
      const t = Date.parse(f.time) / 1000;
      if (day.format(new Date(t * 1000)) !== view.session) continue;
      const buy = f.side === "buy";
      out.push({ time: Math.floor(t / step) * step, position: buy ? "belowBar" : "aboveBar", color: buy ? "#22c55e" : "#ef4444",
        shape: buy ? "arrowUp" : "arrowDown", text: `${buy ? "B" : "S"} ${f.quantity} @ ${f.price.toFixed(2)}` });
    }
    $("chart").dataset.fillMarkers = String(out.length);
    return out;
  }

  async function reload() {
    if (reloading) return;
    reloading = true;
    try {
      const [run, eq, fills, orders, pos] = await Promise.all([dash.api("/api/run"), dash.api("/api/equity"),
        dash.api("/api/fills"), dash.api("/api/orders"), dash.api("/api/positions")]);
      state.run = run.strategy;
      show(state.run !== null);
      if (!state.run) return;
      equity.setData(eq.points.map((p) => ({ time: p.time, value: p.equity })));
      setPoints(eq.points.length);
      state.lastTime = eq.points.length ? eq.points[eq.points.length - 1].time : null;
      state.fills = fills.fills;
      showFills();
      showOrders(orders.orders);
      showPositions(pos.positions);
      showInfo(pos.cash, eq.points.length ? eq.points[eq.points.length - 1].equity : null, run.summary);
      dash.applyMarkers();
    } finally { reloading = false; }
  }

  function onMessage(msg) {
    if (!state.run) { reload().catch((e) => dash.say(e.message)); return; }
    if (msg.type === "trading_done") { reload().catch((e) => dash.say(e.message)); return; }
    if (msg.point) {
      try {
        equity.update({ time: msg.point.time, value: msg.point.equity });
        if (!state.points || msg.point.time !== state.lastTime) setPoints(state.points + 1);
        state.lastTime = msg.point.time;
      } catch (e) { reload().catch((err) => dash.say(err.message)); return; }
    }
    if (msg.fills.length) {
      state.fills.push(...msg.fills);
      dash.applyMarkers();
    }
    pending.fills = pending.fills || msg.fills.length > 0;
    if (msg.orders) pending.orders = msg.orders;
    pending.positions = msg.positions;
    pending.info = [msg.cash, msg.equity];
    if (!pending.frame) pending.frame = requestAnimationFrame(render);
  }

  const pending = { frame: 0 };
  function render() { // the tables at most once a frame, however many instants arrived
    pending.frame = 0;
    if (pending.fills) showFills();
    if (pending.orders) showOrders(pending.orders);
    if (pending.positions) showPositions(pending.positions);
    if (pending.info) showInfo(pending.info[0], pending.info[1], null);
    pending.fills = false; pending.orders = null; pending.positions = null; pending.info = null;
  }

  const hasFills = (view) => state.fills.some((f) => f.symbol === view.symbol);

  return { markers, hasFills, reload, onMessage };
};
