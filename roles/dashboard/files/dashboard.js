// The pipeline monitoring dashboard. It reads config.json (which hosts and apps to show, written by the
// dashboard role), then every few seconds asks Prometheus' HTTP API (proxied by nginx at /api/v1) for the
// last minutes of CPU, memory, app availability and response time, and redraws one card per host with
// inline SVG charts. Plain JavaScript without dependencies: nothing is loaded from anywhere else.
//
// Cards are grouped by app (one .app-group per app, data-app and data-hosts, in config order); a fleet's
// front door (an entry whose group is "lb": the app probed through the lb host) is the first card of its
// app's group, marked data-front-door.
//
// For tests and scripts, every card carries data attributes: data-host, data-app, data-app-state (up, down
// or unknown), and each metric's data-value (the latest number, empty when there is none). Firing alerts
// (Prometheus' /api/v1/alerts) are listed at the top in #alerts (data-count; one .alert per alert with
// data-alertname and data-host); deploy and canary events (pipeline_event_timestamp_seconds, pushed by
// `pipeline deploy`, `pipeline canary` and `pipeline rollout`) are marked on every chart of the card of their app
// (.event-mark with data-kind, data-app, data-version, data-verdict). A running rollout
// (pipeline_rollout_canary_weight{active="true"}) shows its canary weight and verdict so far on its app's group
// (.rollout with data-weight, data-verdict, data-phase; hidden when none runs).
(function () {
  "use strict";

  const API = "/api/v1";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART_W = 300;
  const CHART_H = 56;

  // One PromQL query per metric, each returning one series per `host` label (per `host` and `app` for the
  // probes: the lb host answers for several apps).
  const METRICS = [
    {
      key: "cpu",
      label: "CPU",
      query: 'clamp(100 * (1 - avg by (host) (rate(node_cpu_seconds_total{job="node",mode="idle"}[30s]))), 0, 100)',
      format: (v) => v.toFixed(1) + " %",
      max: () => 100,
    },
    {
      key: "memory",
      label: "Memory",
      query:
        '100 * (1 - max by (host) (node_memory_MemAvailable_bytes{job="node"}) / max by (host) (node_memory_MemTotal_bytes{job="node"}))',
      format: (v) => v.toFixed(1) + " %",
      max: () => 100,
    },
    {
      key: "latency",
      label: "Response time",
      query: '1000 * max by (host, app) (probe_duration_seconds{job="apps"})',
      format: (v) => (v < 10 ? v.toFixed(1) : v.toFixed(0)) + " ms",
      max: (values) => Math.max(10, ...values) * 1.15,
    },
  ];
  const APP_UP = { key: "up", query: 'min by (host, app) (probe_success{job="apps"})' };
  const EXPORTER_UP = { key: "exporter", query: 'min by (host) (up{job="node"})' };

  // Events the tool pushed: one series per event, whose value is the event's time.
  const EVENTS_QUERY = "pipeline_event_timestamp_seconds";
  // Running rollouts: one series per app, whose value is the canary's weight.
  const ROLLOUT_QUERY = 'pipeline_rollout_canary_weight{active="true"}';
  const BAD_VERDICTS = ["FAIL", "failed", "rolled-back"];

  const state = {
    config: null,
    cards: new Map(), // cardKey(entry) -> { root, badge, values, charts, scales, strip }, keyed by metric
    rollouts: new Map(), // app -> the .rollout line of its group
  };

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function setStatus(stateName, text) {
    const status = $("status");
    status.dataset.state = stateName;
    status.textContent = text;
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(url.split("?")[0] + " answered HTTP " + response.status);
    return response.json();
  }

  async function prometheus(path, params) {
    const body = await getJson(API + path + "?" + new URLSearchParams(params));
    if (body.status !== "success") throw new Error("Prometheus: " + (body.error || "query failed"));
    return body.data;
  }

  // Prometheus' clock, not the browser's: ranges end at the newest samples even when the clocks differ.
  async function serverNow() {
    const data = await prometheus("/query", { query: "time()" });
    return Number(data.result[0]);
  }

  // A card's key, and the key of the series that belong to it: the host, plus the app for probe series.
  function seriesKey(host, app) {
    return app === undefined ? host : host + "\u0000" + app;
  }

  function cardKey(entry) {
    return seriesKey(entry.host, entry.app);
  }

  // The series of one card: probes by host and app, host metrics by host.
  function seriesOf(byKey, entry) {
    return byKey[cardKey(entry)] || byKey[entry.host];
  }

  // { seriesKey: [[t, v], ...] } for one range query.
  async function rangeByHost(query, start, end, step) {
    const data = await prometheus("/query_range", { query, start, end, step });
    const out = {};
    for (const series of data.result) {
      const host = series.metric.host;
      if (host === undefined) continue;
      out[seriesKey(host, series.metric.app)] = series.values.map(([t, v]) => [Number(t), Number(v)]).filter(([, v]) => Number.isFinite(v));
    }
    return out;
  }

  function buildCard(entry) {
    const frontDoor = entry.group === "lb";
    const root = el("section", {
      class: frontDoor ? "host front-door" : "host",
      "data-host": entry.host,
      "data-app": entry.app,
      "data-app-state": "unknown",
    });
    if (frontDoor) root.dataset.frontDoor = "true";
    const head = el("div", { class: "host-head" });
    const titles = el("div");
    titles.append(el("h3", {}, frontDoor ? entry.host + " · front door" : entry.host));
    titles.append(el("div", { class: "app" }, entry.app + " · " + entry.url));
    const badge = el("span", { class: "badge", "data-role": "app-state" }, "NO DATA");
    head.append(titles, badge);
    root.append(head);

    const card = { root, badge, values: {}, charts: {}, scales: {}, strip: null };

    const avail = el("div", { class: "metric", "data-metric": "up" });
    const availHead = el("div", { class: "metric-head" });
    const availValue = el("span", { class: "value", "data-value": "" }, "–");
    availHead.append(el("span", {}, entry.app + " availability"), availValue);
    card.strip = svg("svg", {
      class: "chart strip",
      viewBox: "0 0 " + CHART_W + " 14",
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": entry.app + " availability",
    });
    avail.append(availHead, card.strip);
    card.values.up = availValue;
    root.append(avail);

    for (const metric of METRICS) {
      const box = el("div", { class: "metric", "data-metric": metric.key });
      const mhead = el("div", { class: "metric-head" });
      const value = el("span", { class: "value", "data-value": "" }, "–");
      mhead.append(el("span", {}, metric.label), value);
      const chart = svg("svg", {
        class: "chart",
        viewBox: "0 0 " + CHART_W + " " + CHART_H,
        preserveAspectRatio: "none",
        role: "img",
        "aria-label": entry.host + " " + metric.label,
      });
      chart.append(svg("path", { d: "" }));
      const frame = el("div", { class: "chart-frame" });
      const scale = el("span", { class: "scale" }, "");
      frame.append(chart, scale);
      box.append(mhead, frame);
      card.scales[metric.key] = scale;
      card.values[metric.key] = value;
      card.charts[metric.key] = chart;
      root.append(box);
    }
    const axis = el("div", { class: "axis" });
    axis.append(el("span", {}, "−" + state.config.window_minutes + " min"), el("span", {}, "now"));
    root.append(axis);
    return card;
  }

  // SVG path through the points, with a gap wherever samples are missing for more than two steps.
  function linePath(points, start, end, max, step) {
    const x = (t) => ((t - start) / (end - start)) * CHART_W;
    const y = (v) => CHART_H - 2 - (Math.min(v, max) / max) * (CHART_H - 4);
    let d = "";
    let prev = null;
    for (const [t, v] of points) {
      const move = prev === null || t - prev > 2 * step;
      d += (move ? "M" : "L") + x(t).toFixed(1) + " " + y(v).toFixed(1) + " ";
      prev = t;
    }
    return d.trim();
  }

  // The newest value, if it is recent enough to describe "now".
  function latest(points, end, freshness) {
    if (!points || points.length === 0) return null;
    const [t, v] = points[points.length - 1];
    return end - t <= freshness ? v : null;
  }

  function showValue(node, value, format) {
    node.dataset.value = value === null ? "" : String(value);
    node.textContent = value === null ? "–" : format(value);
  }

  function drawStrip(strip, points, start, end, step) {
    const width = (step / (end - start)) * CHART_W;
    const rects = (points || []).map(([t, v]) =>
      svg("rect", {
        class: v >= 1 ? "up" : "down",
        x: (((t - start) / (end - start)) * CHART_W - width).toFixed(2),
        y: 0,
        width: (width + 0.3).toFixed(2),
        height: 14,
      })
    );
    strip.replaceChildren(...rects);
  }

  // The firing alerts, most severe first, in the banner at the top of the page.
  async function refreshAlerts() {
    const data = await prometheus("/alerts", {});
    const firing = (data.alerts || []).filter((a) => a.state === "firing");
    const rank = (a) => (a.labels.severity === "critical" ? 0 : 1);
    firing.sort((a, b) => rank(a) - rank(b) || String(a.labels.alertname).localeCompare(b.labels.alertname));
    const box = $("alerts");
    box.dataset.count = String(firing.length);
    box.hidden = firing.length === 0;
    const items = firing.map((a) => {
      const item = el("div", {
        class: "alert",
        "data-alertname": a.labels.alertname || "",
        "data-host": a.labels.host || "",
        "data-severity": a.labels.severity || "",
      });
      const since = a.activeAt ? " · since " + new Date(a.activeAt).toLocaleTimeString() : "";
      item.append(
        el("strong", {}, (a.labels.severity || "alert").toUpperCase() + " " + (a.labels.alertname || "")),
        el("span", {}, " " + ((a.annotations && a.annotations.summary) || "") + since)
      );
      return item;
    });
    if (firing.length > 0) items.unshift(el("h2", {}, firing.length === 1 ? "1 alert firing" : firing.length + " alerts firing"));
    box.replaceChildren(...items);
  }

  // [{ kind, app, version, verdict, time }] of the events pushed by the tool (empty if none or no Pushgateway).
  async function events() {
    const data = await prometheus("/query", { query: EVENTS_QUERY });
    return data.result
      .map((s) => ({
        kind: s.metric.kind || "event",
        app: s.metric.app || "",
        version: s.metric.version || "",
        verdict: s.metric.verdict || "",
        time: Number(s.value[1]),
      }))
      .filter((e) => Number.isFinite(e.time));
  }

  // Vertical marks at each event's time on every chart of a card.
  function drawEvents(card, entry, list, start, end) {
    const mine = list.filter((e) => e.app === entry.app && e.time >= start && e.time <= end);
    card.root.dataset.events = String(mine.length);
    for (const chart of [card.strip, ...Object.values(card.charts)]) {
      for (const old of chart.querySelectorAll(".event-mark")) old.remove();
      const height = chart === card.strip ? 14 : CHART_H;
      for (const e of mine) {
        const x = (((e.time - start) / (end - start)) * CHART_W).toFixed(1);
        const mark = svg("line", {
          class: "event-mark " + (BAD_VERDICTS.includes(e.verdict) ? "bad" : "good"),
          x1: x,
          x2: x,
          y1: 0,
          y2: height,
          "data-kind": e.kind,
          "data-app": e.app,
          "data-version": e.version,
          "data-verdict": e.verdict,
        });
        const title = svg("title", {});
        title.textContent = e.kind + " " + e.version + " " + e.verdict + " at " + new Date(e.time * 1000).toLocaleTimeString();
        mark.append(title);
        chart.append(mark);
      }
    }
  }

  // { app: { weight, verdict, phase, version } } of the rollouts that run now.
  async function rollouts() {
    const data = await prometheus("/query", { query: ROLLOUT_QUERY });
    const out = {};
    for (const s of data.result) {
      const weight = Number(s.value[1]);
      if (!s.metric.app || !Number.isFinite(weight)) continue;
      out[s.metric.app] = { weight, verdict: s.metric.verdict || "", phase: s.metric.phase || "", version: s.metric.version || "" };
    }
    return out;
  }

  function drawRollouts(running) {
    for (const [app, node] of state.rollouts) {
      const r = running[app];
      node.hidden = !r;
      node.dataset.weight = r ? String(r.weight) : "";
      node.dataset.verdict = r ? r.verdict : "";
      node.dataset.phase = r ? r.phase : "";
      node.className = "rollout" + (r && BAD_VERDICTS.includes(r.verdict) ? " bad" : "");
      node.textContent = r ? "rollout of " + r.version + ": canary " + r.weight + " %, verdict so far " + r.verdict + " · " + r.phase : "";
    }
  }

  async function refresh() {
    const cfg = state.config;
    const end = await serverNow();
    const start = end - cfg.window_minutes * 60;
    const step = Math.max(1, Math.round((end - start) / 240));
    const freshness = Math.max(3 * cfg.refresh_seconds, 2 * step) + 5;

    const queries = [APP_UP, EXPORTER_UP, ...METRICS];
    const [results, eventList, running] = await Promise.all([
      Promise.all(queries.map((q) => rangeByHost(q.query, start, end, step))),
      events(),
      rollouts(),
      refreshAlerts(),
    ]);
    drawRollouts(running);
    const byKey = {};
    queries.forEach((q, i) => (byKey[q.key] = results[i]));

    for (const entry of cfg.hosts) {
      const card = state.cards.get(cardKey(entry));
      const upPoints = seriesOf(byKey.up, entry);
      const up = latest(upPoints, end, freshness);
      const appState = up === null ? "unknown" : up >= 1 ? "up" : "down";
      card.root.dataset.appState = appState;
      card.badge.textContent = appState === "up" ? "UP" : appState === "down" ? "DOWN" : "NO DATA";
      showValue(card.values.up, up, (v) => (v >= 1 ? "up" : "down"));
      drawStrip(card.strip, upPoints, start, end, step);

      const exporter = latest(seriesOf(byKey.exporter, entry), end, freshness);
      card.root.dataset.exporterState = exporter === null ? "unknown" : exporter >= 1 ? "up" : "down";

      for (const metric of METRICS) {
        const points = seriesOf(byKey[metric.key], entry) || [];
        showValue(card.values[metric.key], latest(points, end, freshness), metric.format);
        const max = metric.max(points.map(([, v]) => v));
        card.charts[metric.key].firstChild.setAttribute("d", linePath(points, start, end, max, step));
        card.scales[metric.key].textContent = "max " + metric.format(max);
      }
      drawEvents(card, entry, eventList, start, end);
    }
    const when = new Date(end * 1000).toLocaleTimeString();
    $("status").dataset.updated = String(end);
    setStatus("live", "Live · updated " + when + " · every " + cfg.refresh_seconds + " s · last " + cfg.window_minutes + " min");
  }

  async function loop() {
    try {
      await refresh();
    } catch (err) {
      setStatus("error", "Cannot reach Prometheus: " + err.message + " (retrying)");
    }
    setTimeout(loop, state.config.refresh_seconds * 1000);
  }

  async function start() {
    try {
      state.config = await getJson("config.json");
    } catch (err) {
      setStatus("error", "Cannot load config.json: " + err.message);
      return;
    }
    const cfg = state.config;
    document.title = cfg.title;
    $("title").textContent = cfg.title;
    const main = $("hosts");
    // One group per app, in the order the apps first appear; the front door first within its app.
    const groups = new Map();
    for (const entry of cfg.hosts) {
      if (!groups.has(entry.app)) groups.set(entry.app, []);
      groups.get(entry.app).push(entry);
    }
    for (const [app, entries] of groups) {
      entries.sort((a, b) => (b.group === "lb") - (a.group === "lb"));
      const hosts = entries.filter((e) => e.group !== "lb").length;
      const section = el("section", { class: "app-group", "data-app": app, "data-hosts": String(hosts) });
      section.append(el("h2", {}, app + " · " + hosts + (hosts === 1 ? " host" : " hosts")));
      const rollout = el("div", { class: "rollout", "data-app": app });
      rollout.hidden = true;
      state.rollouts.set(app, rollout);
      section.append(rollout);
      const grid = el("div", { class: "app-hosts" });
      for (const entry of entries) {
        const card = buildCard(entry);
        state.cards.set(cardKey(entry), card);
        grid.append(card.root);
      }
      section.append(grid);
      main.append(section);
    }
    if (cfg.hosts.length === 0) main.append(el("p", {}, "No hosts configured (dashboard_hosts is empty)."));
    loop();
  }

  start();
})();
