// The sessionflow dashboard: REST for snapshots, /ws/events for live updates (docs/web.md).
"use strict";

(function () {
  const TZ = "America/New_York";
  const $ = (id) => document.getElementById(id);
  const view = { symbol: null, session: null, interval: "1m", status: null, bars: [], minutes: new Map(), source: "" };
  let chart, candles, volume, socket, refreshTimer, trading = null;

  const hhmm = new Intl.DateTimeFormat("en-US", { timeZone: TZ, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const stamp = new Intl.DateTimeFormat("sv-SE", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const etTime = (sec) => hhmm.format(new Date(sec * 1000));

  function say(text) { $("message").textContent = text || ""; }

  async function api(path, body) {
    const init = { credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    if (r.status === 401) { $("login").showModal(); throw new Error("token needed"); }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail || data.error || r.statusText);
    return data;
  }

  function makeChart() {
    chart = LightweightCharts.createChart($("chart"), {
      autoSize: true,
      layout: { background: { color: "#171d24" }, textColor: "#d8dee6" },
      grid: { vertLines: { color: "#1f2933" }, horzLines: { color: "#1f2933" } },
      // a bar added while following must not shift the session-wide range onto the last bars
      timeScale: { timeVisible: true, secondsVisible: false, shiftVisibleRangeOnNewBar: false, tickMarkFormatter: (t) => etTime(t) },
      localization: { timeFormatter: (t) => stamp.format(new Date(t * 1000)) + " ET" },
    });
    candles = chart.addCandlestickSeries();
    volume = chart.addHistogramSeries({ priceFormat: { type: "volume" }, priceScaleId: "", color: "#3b82f680" });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    chart.timeScale().subscribeVisibleLogicalRangeChange((r) => { // read by the browser test
      $("chart").dataset.range = r ? r.from.toFixed(1) + "," + r.to.toFixed(1) : "";
    });
  }

  const volBar = (b) => ({ time: b.time, value: b.volume, color: b.close >= b.open ? "#26a69a80" : "#ef535080" });

  function gapMarkers(gaps, bars) {
    // a gap has no bar to sit on: mark the bar before it (or the first bar, for a late start)
    const byTime = new Map();
    for (const g of gaps) {
      const start = Date.parse(g.start) / 1000, end = Date.parse(g.end) / 1000;
      let at = bars.length ? bars[0].time : null;
      for (const b of bars) { if (b.time < start) at = b.time; else break; }
      if (at === null) continue;
      const text = "gap " + etTime(start) + "-" + etTime(end);
      byTime.set(at, byTime.has(at) ? byTime.get(at) + ", " + text.slice(4) : text);
    }
    return [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([time, text]) => (
      { time, position: "aboveBar", color: "#f97316", shape: "arrowDown", text }));
  }

  async function loadChart() {
    if (!view.symbol) return;
    const q = new URLSearchParams({ interval: view.interval });
    if (view.session) q.set("session", view.session);
    const data = await api("/api/bars/" + encodeURIComponent(view.symbol) + "?" + q);
    view.session = data.session;
    view.bars = data.bars;
    view.source = data.source;
    $("chart-session").value = data.session;
    candles.setData(data.bars);
    volume.setData(data.bars.map(volBar));
    if (playing()) { // the whole session's width: bars fill it as they come
      const minutes = view.minutes.get(data.session) || 390;
      chart.timeScale().setVisibleLogicalRange({ from: -0.5, to: Math.ceil(minutes / parseInt(data.interval, 10)) - 0.5 });
    } else {
      chart.timeScale().fitContent();
    }
    await loadGaps();
    markSelected();
  }

  // the chart shows the session the system is playing (its bars arrive over the WebSocket)
  const playing = () => !!(view.status && view.status.session === view.session &&
    (view.status.state === "running" || view.status.state === "paused"));

  async function loadGaps() { // the caption and the gap markers (the API's gaps go up to the clock)
    const symbol = view.symbol, session = view.session;
    const gaps = await api("/api/gaps?" + new URLSearchParams({ session, symbol }));
    if (symbol !== view.symbol || session !== view.session) return;
    view.gapMarkers = gapMarkers(gaps.gaps, view.bars);
    applyMarkers();
    $("chart-info").textContent = `${symbol} ${session} ${view.interval}: ${view.bars.length} bars, ${gaps.gaps.length} gap(s) (${view.source})`;
  }

  function applyMarkers() { // the gaps, and a strategy's fills (trading.js)
    const all = [...(view.gapMarkers || []), ...(trading ? trading.markers(view) : [])];
    candles.setMarkers(all.sort((a, b) => a.time - b.time));
  }

  function qualityColour(q) {
    const t = Math.max(0, Math.min(1, (q - 95) / 5)); // 95% or less: red; 100%: green
    return `hsl(${Math.round(t * 120)}, 70%, 50%)`;
  }

  async function loadQuality() {
    const q = await api("/api/quality");
    const table = $("heatmap");
    table.textContent = "";
    const head = table.insertRow();
    head.appendChild(document.createElement("th"));
    for (const s of q.sessions) {
      const th = document.createElement("th");
      th.textContent = s.slice(5);
      th.title = s;
      head.appendChild(th);
    }
    const cells = new Map(q.cells.map((c) => [c.symbol + "|" + c.session, c]));
    for (const sym of q.symbols) {
      const row = table.insertRow();
      const th = document.createElement("th");
      th.textContent = sym;
      row.appendChild(th);
      for (const s of q.sessions) {
        const c = cells.get(sym + "|" + s);
        const td = row.insertCell();
        if (!c) continue;
        td.className = "cell" + (c.source === "engine" ? " engine" : "") + (c.running ? " running" : "");
        td.dataset.symbol = sym;
        td.dataset.session = s;
        td.style.background = c.quality === null || !c.expected ? "#334155" : qualityColour(c.quality);
        td.textContent = c.label; // rounded by the server's one rule (docs/real-data.md)
        td.title = !c.charged && c.source === "store" ? `${sym} ${s}: not stored (before its first or after its last stored session; not charged)` :
          `${sym} ${s}: ${c.bars}/${c.expected} bars, quality ${c.quality}%, ` +
          `${c.missing} missing minute(s) in ${c.gap_ranges.length} gap(s), ${c.filled} filled (${c.source}` +
          (c.running ? "; the system is playing it, figures so far" : "") + ")";
        td.addEventListener("click", () => {
          $("follow").checked = false;
          view.symbol = sym; view.session = s;
          $("symbol").value = sym;
          loadChart().catch((e) => say(e.message));
        });
      }
    }
    markSelected();
  }

  function markSelected() {
    for (const td of document.querySelectorAll("#heatmap td.cell")) {
      td.classList.toggle("selected", td.dataset.symbol === view.symbol && td.dataset.session === view.session);
    }
  }

  async function loadReport() {
    const { rows } = await api("/api/report");
    const table = $("report");
    table.textContent = "";
    const names = ["session", "symbol", "bars", "exp", "qual%", "gaps", "filled", "volume", "high", "low", "gap ranges"];
    const head = table.insertRow();
    for (const n of names) { const th = document.createElement("th"); th.textContent = n; head.appendChild(th); }
    for (const r of rows) {
      const tr = table.insertRow();
      let ranges = r.gaps.join(", ") || "-";
      if (r.filled.length) ranges += " (filled: " + r.filled.join(", ") + ")";
      const values = [r.partial ? r.session + " (so far)" : r.session, r.symbol, r.bars, r.expected, r.quality.toFixed(4), r.gaps_found, r.gaps_filled,
        r.volume.toLocaleString("en-US"), r.high === null ? "-" : r.high.toFixed(2), r.low === null ? "-" : r.low.toFixed(2), ranges];
      values.forEach((v, i) => { const td = tr.insertCell(); td.textContent = v; if (i === 10) td.className = "ranges"; });
    }
  }

  function showStatus(st) {
    const before = view.status;
    view.status = st;
    document.body.dataset.statusCount = String((Number(document.body.dataset.statusCount) || 0) + 1);
    $("mode").textContent = st.mode;
    $("state").textContent = st.state;
    $("state").dataset.state = st.state;
    $("clock").textContent = st.clock ? stamp.format(new Date(st.clock)) + " ET" : "-";
    $("clock").dataset.iso = st.clock || "";
    $("speed").textContent = st.speed === 0 ? "0 (max)" : st.speed + "x";
    if (!before) $("speed-input").value = st.speed;
    $("session").textContent = st.session || "-";
    $("pause").disabled = st.state !== "running";
    $("resume").disabled = st.state !== "paused";
    $("stop").disabled = st.state !== "running" && st.state !== "paused";
    const moved = !before || before.session !== st.session || before.state !== st.state;
    if (moved && $("follow").checked && st.session && st.session !== view.session) {
      view.session = st.session;
      loadChart().catch((e) => say(e.message));
    }
    if (moved || (st.state === "running" && (!before || before.clock !== st.clock))) scheduleRefresh();
  }

  // report, heat map and caption: after a state change, and while a run plays (at most
  // once a second: the status message comes every 0.5 s)
  let lastRefresh = 0;
  function scheduleRefresh() {
    if (refreshTimer) return;
    const wait = Math.max(300, 1000 - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      lastRefresh = Date.now();
      const done = [loadQuality(), loadReport()];
      if (playing()) done.push(loadGaps());
      Promise.all(done).then(() => { document.body.dataset.refreshes = String((Number(document.body.dataset.refreshes) || 0) + 1); })
        .catch((e) => say(e.message));
    }, wait);
  }

  function onBars(msg, interval) {
    if (!view.status || view.interval !== interval || view.session !== view.status.session) return;
    for (const b of msg.bars) {
      if (b.symbol !== view.symbol) continue;
      try {
        candles.update(b);
        volume.update(volBar(b));
      } catch (e) { // a revised window older than the last bar: reload the series
        reloadChartSoon();
        return;
      }
      const last = view.bars.length ? view.bars[view.bars.length - 1].time : -1;
      if (b.time > last) view.bars.push(b);
      else if (b.time === last) view.bars[view.bars.length - 1] = b;
    }
    if (trading && trading.hasFills(view)) applyMarkers(); // a marker needs its candle drawn
  }

  let reloadPending = false;
  function reloadChartSoon() { // at most one reload per half second, however many reasons
    if (reloadPending) return;
    reloadPending = true;
    setTimeout(() => { reloadPending = false; loadChart().catch((e) => say(e.message)); }, 500);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/events");
    socket.onmessage = (ev) => { // one message, or an array of a send window's messages
      const data = JSON.parse(ev.data);
      for (const msg of Array.isArray(data) ? data : [data]) onMessage(msg);
    };
    socket.onclose = () => setTimeout(connect, 2000);
  }

  function onMessage(msg) {
    if (msg.type === "status") showStatus(msg.status);
    else if (msg.type === "bars") onBars(msg, "1m");
    else if (msg.type === "derived") onBars(msg, msg.interval + "m");
    else if (msg.type === "session_start" || msg.type === "session_end") scheduleRefresh();
    else if (trading && msg.type.startsWith("trading")) trading.onMessage(msg);
    else if (msg.type === "dropped" && view.session === (view.status && view.status.session)) {
      reloadChartSoon(); // live updates were lost: take the series anew
    }
    if (msg.type === "dropped" && trading) trading.reload();
  }

  async function control(action, body) {
    try { showStatus(await api("/api/system/" + action, body || {})); say(""); }
    catch (e) { say(e.message); }
  }

  function wire() {
    $("pause").onclick = () => control("pause");
    $("resume").onclick = () => control("resume");
    $("stop").onclick = () => control("stop");
    $("set-speed").onclick = () => control("speed", { speed: Number($("speed-input").value) });
    $("start-form").onsubmit = (ev) => {
      ev.preventDefault();
      const symbols = $("start-symbols").value.trim();
      const strategy = $("start-strategy").value.trim();
      const params = $("start-params").value.split(",").map((p) => p.trim()).filter((p) => p);
      control("start", { symbols: symbols || null, start: $("start-start").value, end: $("start-end").value,
        speed: Number($("start-speed").value), strategy: strategy || null, params: strategy ? params : null })
        .then(() => trading && trading.reload());
      $("follow").checked = true;
    };
    $("symbol").onchange = () => { view.symbol = $("symbol").value; loadChart().catch((e) => say(e.message)); };
    $("chart-session").onchange = () => {
      $("follow").checked = false;
      view.session = $("chart-session").value;
      loadChart().catch((e) => say(e.message));
    };
    for (const b of document.querySelectorAll("#intervals button")) {
      b.onclick = () => {
        view.interval = b.dataset.interval;
        for (const o of document.querySelectorAll("#intervals button")) o.classList.toggle("active", o === b);
        loadChart().catch((e) => say(e.message));
      };
    }
    $("login-form").onsubmit = async () => {
      try { await api("/api/login", { token: $("token").value }); $("token").value = ""; start(); }
      catch (e) { say(e.message); }
    };
  }

  async function start() {
    const [{ symbols }, { sessions }, st] = await Promise.all([api("/api/symbols"), api("/api/sessions"), api("/api/system")]);
    $("symbol").textContent = "";
    for (const s of symbols) $("symbol").add(new Option(s, s));
    $("chart-session").textContent = "";
    for (const s of sessions) {
      $("chart-session").add(new Option(s.session + (s.early_close ? " (early close)" : ""), s.session));
      view.minutes.set(s.session, s.minutes);
    }
    if (sessions.length) {
      $("start-start").value = sessions[0].session;
      $("start-end").value = sessions[sessions.length - 1].session;
    }
    view.symbol = st.symbols && st.symbols.length ? st.symbols[0] : symbols[0];
    view.session = st.session || (sessions.length ? sessions[sessions.length - 1].session : null);
    $("symbol").value = view.symbol;
    showStatus(st);
    await Promise.all([loadChart(), loadQuality(), loadReport(), trading ? trading.reload() : null]);
    if (!socket) connect();
    document.body.dataset.ready = "true";
  }

  makeChart();
  if (window.sessionflowTrading) trading = window.sessionflowTrading({ api, say, applyMarkers, stamp });
  wire();
  start().catch((e) => say(e.message));
})();
