// Live monitoring on the cluster, alerts, consumer group and broker pages. Two loops, both paused
// while the tab is hidden:
// - the page's live regions (health, alerts, replicas, consumer groups, the alert table, a group's or
//   a broker's tables, the firing count) are re-rendered by the server and swapped in place: the same
//   templates as the first render, so the two cannot drift apart;
// - the history charts (consumer lag per group, messages in, bytes in and disk per broker) are drawn
//   as inline SVG from the metrics history API.
"use strict";

(function () {
  const PANELS_MS = 7000;
  const CHART_MS = 10000;
  const MAX_BACKOFF_MS = 60000;
  const MAX_SERIES = 8;
  const HEIGHT = 260;
  const MARGIN = { top: 12, right: 18, bottom: 28, left: 60 };
  const SVG_NS = "http://www.w3.org/2000/svg";
  const RANGES = { "15m": 15 * 60e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3 };

  // Runs `work` (which returns a promise) every `interval` ms, backing off while it fails.
  function every(interval, work) {
    let delay = interval;
    function tick() {
      if (document.hidden) {
        setTimeout(tick, interval);
        return;
      }
      work()
        .then(function () { delay = interval; })
        .catch(function () { delay = Math.min(delay * 2, MAX_BACKOFF_MS); })
        .then(function () { setTimeout(tick, delay); });
    }
    setTimeout(tick, interval);
  }

  function fetchOk(url, accept) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: accept } }).then(function (response) {
      if (!response.ok) throw new Error(url + " answered " + response.status);
      return response;
    });
  }

  // -- live panels ------------------------------------------------------------------------------

  function refreshPanels(url) {
    return fetchOk(url, "text/html").then(function (response) { return response.text(); }).then(function (html) {
      const fresh = new DOMParser().parseFromString(html, "text/html");
      fresh.querySelectorAll("[data-live-region]").forEach(function (region) {
        const name = region.dataset.liveRegion;
        const current = document.querySelector('[data-live-region="' + name + '"]');
        if (!current) return;
        if (name === "operation-slot") {
          // An operation started elsewhere (the API, self-healing) takes the slot; the one shown is
          // left to operation.js, which follows it to its end.
          const started = region.dataset.operation;
          if (!started || started === current.dataset.operation) return;
          const slot = document.importNode(region, true);
          current.replaceWith(slot);
          if (window.kcpFollowOperation) window.kcpFollowOperation(slot.querySelector("#operation"));
          return;
        }
        current.replaceWith(document.importNode(region, true));
      });
    });
  }

  // -- lag chart --------------------------------------------------------------------------------

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceStep(span, count) {
    const raw = span / Math.max(count, 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = [1, 2, 2.5, 5, 10].find(function (m) { return m * power >= raw; });
    return unit * power;
  }

  const TIME_STEPS = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600].map(function (s) {
    return s * 1000;
  });

  function formatCount(value) {
    const abs = Math.abs(value);
    if (abs >= 1e9) return (value / 1e9).toFixed(abs >= 1e10 ? 0 : 1) + "G";
    if (abs >= 1e6) return (value / 1e6).toFixed(abs >= 1e7 ? 0 : 1) + "M";
    if (abs >= 1e3) return (value / 1e3).toFixed(abs >= 1e4 ? 0 : 1) + "k";
    return String(Math.round(value));
  }

  function formatBytes(value) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let size = value;
    let unit = 0;
    while (Math.abs(size) >= 1024 && unit < units.length - 1) {
      size /= 1024;
      unit += 1;
    }
    return (unit === 0 ? String(Math.round(size)) : size.toFixed(Math.abs(size) >= 10 ? 0 : 1)) + " " + units[unit];
  }

  function formatSeconds(value) {
    let seconds = Math.round(value);
    if (seconds < 60) return seconds + "s";
    let minutes = Math.floor(seconds / 60);
    seconds %= 60;
    if (minutes < 60) return minutes + "m" + (seconds ? " " + String(seconds).padStart(2, "0") + "s" : "");
    const hours = Math.floor(minutes / 60);
    minutes %= 60;
    return hours + "h" + (minutes ? " " + String(minutes).padStart(2, "0") + "m" : "");
  }

  function clock(ms, seconds) {
    return new Date(ms).toISOString().slice(11, seconds ? 19 : 16);
  }

  // Splits a series into drawable runs: a missing value, or a silence much longer than the usual
  // collection interval (the cluster was unreachable), breaks the line instead of bridging it.
  function runs(points) {
    const steps = [];
    for (let i = 1; i < points.length; i++) steps.push(points[i][0] - points[i - 1][0]);
    steps.sort(function (a, b) { return a - b; });
    const usual = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
    const result = [];
    let run = [];
    points.forEach(function (point, i) {
      const gap = i > 0 && usual > 0 && point[0] - points[i - 1][0] > 3 * usual;
      if (point[1] === null || gap) {
        if (run.length) result.push(run);
        run = [];
      }
      if (point[1] !== null) run.push(point);
    });
    if (run.length) result.push(run);
    return result;
  }

  // How each series reads: its values' format, what the chart's label calls it, and for percentages
  // a fixed top of the scale.
  const MEASURES = {
    consumer_lag: { format: formatCount, label: "Messages waiting per consumer group" },
    consumer_time_lag_seconds: { format: formatSeconds, label: "Time lag per consumer group" },
    broker_messages_in_per_second: {
      format: function (v) { return formatCount(v) + "/s"; }, label: "Messages in per broker",
    },
    broker_bytes_in_per_second: {
      format: function (v) { return formatBytes(v) + "/s"; }, label: "Bytes in per broker",
    },
    broker_disk_used_percent: {
      format: function (v) { return Math.round(v) + "%"; }, label: "Disk used per broker", top: 100,
    },
  };

  // Marks an element as a series' own: data-group="<id>" or data-broker="<id>".
  function tag(node, series) {
    if (series.group !== null && series.group !== undefined) node.setAttribute("data-group", series.group);
    else node.setAttribute("data-broker", series.broker);
  }

  function seriesName(series) {
    return series.group !== null && series.group !== undefined ? series.group : "broker " + series.broker;
  }

  // One chart of a measure over time: a line per consumer group (the lag charts) or per broker
  // (data-kind="brokers"); data-group or data-broker keeps only that one.
  function LagChart(section) {
    this.section = section;
    this.url = section.dataset.historyUrl;
    this.canvas = section.querySelector('[data-role="chart"]');
    this.legend = section.querySelector('[data-role="legend"]');
    const pressed = section.querySelector('[data-measure][aria-pressed="true"]');
    this.measure = pressed ? pressed.dataset.measure : "consumer_lag";
    this.range = "1h";
    this.series = null;
    this.latest = 0;
    const chart = this;
    section.querySelectorAll("[data-measure]").forEach(function (button) {
      button.addEventListener("click", function () { chart.choose("measure", button); });
    });
    section.querySelectorAll("[data-range]").forEach(function (button) {
      button.addEventListener("click", function () { chart.choose("range", button); });
    });
    let resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { chart.draw(); }, 150);
    });
  }

  LagChart.prototype.choose = function (kind, button) {
    this.section.querySelectorAll("[data-" + kind + "]").forEach(function (other) {
      other.setAttribute("aria-pressed", String(other === button));
    });
    this[kind] = button.dataset[kind];
    this.load().catch(function () {});
  };

  // The groups to draw: the first rows of the consumer-group table, which lists the worst first.
  // Asking for those alone keeps each poll small on a cluster with thousands of groups.
  LagChart.prototype.groups = function () {
    if (this.section.dataset.kind === "brokers") return { ids: null, total: 0 };
    if (this.section.dataset.group) return { ids: [this.section.dataset.group], total: 1 };
    const table = document.getElementById("consumer-groups");
    const total = table ? parseInt(table.dataset.total || "0", 10) : 0;
    const ids = table ? Array.prototype.slice.call(table.querySelectorAll("tr[data-group]"), 0, MAX_SERIES)
      .map(function (row) { return row.dataset.group; }) : [];
    return { ids: total > ids.length ? ids : null, total: total };
  };

  LagChart.prototype.load = function () {
    const chart = this;
    const groups = this.groups();
    let query = "?series=" + this.measure + "&since=" + this.range;
    (groups.ids || []).forEach(function (id) { query += "&group=" + encodeURIComponent(id); });
    this.total = groups.total;
    const request = ++this.latest;
    return fetchOk(this.url + query, "application/json").then(function (response) {
      return response.json();
    }).then(function (body) {
      // A slow answer for a previous choice must not overwrite the current one.
      if (request !== chart.latest) return;
      chart.until = Date.now();
      const only = chart.section.dataset.broker;
      chart.series = body.series
        .filter(function (s) { return !only || String(s.broker_id) === only; })
        .map(function (s) {
          return {
            group: s.group_id,
            broker: s.broker_id,
            points: s.points.map(function (p) { return [Date.parse(p[0]), p[1]]; }),
          };
        });
      chart.draw();
    });
  };

  LagChart.prototype.draw = function () {
    if (!this.series) return;
    const canvas = this.canvas;
    const measure = MEASURES[this.measure] || MEASURES.consumer_lag;
    const format = measure.format;
    const until = this.until;
    const span = RANGES[this.range];
    const visible = this.series
      .map(function (s) {
        const values = s.points.filter(function (p) { return p[1] !== null; }).map(function (p) { return p[1]; });
        return {
          name: seriesName(s), group: s.group, broker: s.broker, points: s.points,
          peak: values.length ? Math.max.apply(null, values) : null,
        };
      })
      .filter(function (s) { return s.peak !== null; })
      .sort(function (a, b) { return b.peak - a.peak || (a.name < b.name ? -1 : 1); });
    const drawn = visible.slice(0, MAX_SERIES);
    // The axis spans the whole range asked for, however little history there is: a line that starts
    // half way across says "no data before this", which fitting the axis to the data would hide.
    const since = until - span;
    canvas.textContent = "";
    this.legend.textContent = "";
    if (!drawn.length) {
      const empty = document.createElement("p");
      empty.className = "muted chart-empty";
      empty.textContent = this.section.dataset.kind === "brokers"
        ? "No history in this range yet: each collection adds a point per broker, and rates need two."
        : "No lag history in this range yet: each collection adds a point per consumer group.";
      canvas.appendChild(empty);
      return;
    }

    const width = Math.max(canvas.clientWidth, 320);
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
    const peak = Math.max.apply(null, drawn.map(function (s) { return s.peak; }));
    const top = measure.top || (peak > 0 ? peak : 1);
    const yStep = niceStep(top, 4);
    const yMax = Math.max(yStep, Math.ceil(top / yStep) * yStep);
    const x = function (ms) { return MARGIN.left + ((ms - since) / (until - since)) * plotW; };
    const y = function (v) { return MARGIN.top + plotH - (v / yMax) * plotH; };

    const svg = el("svg", {
      class: "lag-svg",
      width: width,
      height: HEIGHT,
      viewBox: "0 0 " + width + " " + HEIGHT,
      "data-since": since,
      "data-until": until,
      role: "img",
      "aria-label": measure.label + " over the last " + this.range,
    });
    const axes = el("g", { class: "axes" });
    for (let v = 0; v <= yMax + yStep / 2; v += yStep) {
      axes.appendChild(el("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }));
      axes.appendChild(el("text", { class: "tick", x: MARGIN.left - 8, y: y(v) + 4, "text-anchor": "end" }, format(v)));
    }
    const xStep = TIME_STEPS.find(function (s) { return (until - since) / s <= 6; }) || TIME_STEPS[TIME_STEPS.length - 1];
    // Labels closer than this to the plot's right edge would be cut off.
    const lastTick = until - xStep / 4;
    for (let t = Math.ceil(since / xStep) * xStep; t <= lastTick; t += xStep) {
      axes.appendChild(el("line", { class: "grid grid-x", x1: x(t), x2: x(t), y1: MARGIN.top, y2: MARGIN.top + plotH }));
      axes.appendChild(el("text", { class: "tick", x: x(t), y: HEIGHT - 8, "text-anchor": "middle" }, clock(t, xStep < 60e3)));
    }
    svg.appendChild(axes);

    const legend = this.legend;
    drawn.forEach(function (series, index) {
      const group = el("g", { class: "series series-" + index });
      tag(group, series);
      group.appendChild(el("title", {}, series.name));
      runs(series.points.filter(function (p) { return p[0] >= since; })).forEach(function (run) {
        const points = run.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" ");
        group.appendChild(el("polyline", { points: points, "data-points": run.length }));
      });
      const last = series.points[series.points.length - 1];
      if (last && last[1] !== null && last[0] >= since) {
        group.appendChild(el("circle", { cx: x(last[0]), cy: y(last[1]), r: 3 }));
      }
      svg.appendChild(group);
      const item = document.createElement("li");
      tag(item, series);
      const swatch = document.createElement("span");
      swatch.className = "swatch series-swatch series-" + index;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(series.name));
      legend.appendChild(item);
    });
    const undrawn = Math.max(visible.length, this.total) - drawn.length;
    if (undrawn > 0) {
      const more = document.createElement("li");
      more.className = "muted";
      more.textContent = "+" + undrawn + (this.section.dataset.kind === "brokers" ? " more brokers" : " more groups") +
        " not drawn";
      legend.appendChild(more);
    }
    const zone = document.createElement("li");
    zone.className = "muted legend-note";
    zone.textContent = "times in UTC";
    legend.appendChild(zone);

    const cursor = el("line", { class: "cursor", y1: MARGIN.top, y2: MARGIN.top + plotH, visibility: "hidden" });
    svg.appendChild(cursor);
    const overlay = el("rect", { class: "overlay", x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH });
    svg.appendChild(overlay);
    canvas.appendChild(svg);

    const readout = document.createElement("div");
    readout.className = "chart-readout";
    readout.hidden = true;
    canvas.appendChild(readout);

    // Hovering shows each drawn group's value nearest to the pointer's time.
    overlay.addEventListener("mousemove", function (event) {
      const box = svg.getBoundingClientRect();
      const at = since + ((event.clientX - box.left - MARGIN.left) / plotW) * (until - since);
      readout.textContent = "";
      const title = document.createElement("strong");
      title.textContent = clock(at, until - since <= 3600e3) + " UTC";
      readout.appendChild(title);
      drawn.forEach(function (series, index) {
        let best = null;
        series.points.forEach(function (p) {
          if (p[1] !== null && (best === null || Math.abs(p[0] - at) < Math.abs(best[0] - at))) best = p;
        });
        if (!best) return;
        const row = document.createElement("div");
        const swatch = document.createElement("span");
        swatch.className = "swatch series-swatch series-" + index;
        row.appendChild(swatch);
        row.appendChild(document.createTextNode(" " + series.name + ": " + format(best[1])));
        readout.appendChild(row);
      });
      cursor.setAttribute("x1", x(at));
      cursor.setAttribute("x2", x(at));
      cursor.setAttribute("visibility", "visible");
      readout.hidden = false;
      const left = event.clientX - box.left + 14;
      readout.style.left = (left + 220 > width ? left - 240 : left) + "px";
      readout.style.top = MARGIN.top + "px";
    });
    overlay.addEventListener("mouseleave", function () {
      cursor.setAttribute("visibility", "hidden");
      readout.hidden = true;
    });
  };

  document.addEventListener("DOMContentLoaded", function () {
    const panels = document.getElementById("live-panels");
    if (panels) {
      every(PANELS_MS, function () { return refreshPanels(panels.dataset.liveUrl); });
    }
    document.querySelectorAll("section[data-history-url]").forEach(function (section) {
      const chart = new LagChart(section);
      chart.load().catch(function () {});
      every(CHART_MS, function () { return chart.load(); });
    });
  });
})();
