// Live view of an operation: polls the REST API (with the session cookie) and updates the state,
// progress bar, steps and log in place until the operation finishes. On a cluster page it also
// follows the cluster's status, bootstrap servers and broker states.
"use strict";

(function () {
  const POLL_MS = 2000;
  const MAX_BACKOFF_MS = 15000;
  const ACTIVE = ["pending", "running"];

  function label(value) {
    return value ? value.charAt(0).toUpperCase() + value.slice(1) : "";
  }

  function setBadge(badge, value) {
    if (!badge || !value) return;
    const family = badge.classList.contains("badge-op") ? " badge-op" : "";
    badge.className = "badge badge-" + value + family;
    badge.textContent = label(value);
  }

  // Microseconds since the epoch from an ISO timestamp; Date keeps only milliseconds, and log lines
  // written within one millisecond must still be told apart.
  function micros(iso) {
    const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(iso || "");
    if (!match) return 0;
    const seconds = Date.parse(match[1] + (match[3] || "Z"));
    const fraction = (match[2] || "").padEnd(6, "0").slice(0, 6);
    return seconds * 1000 + parseInt(fraction || "0", 10);
  }

  // As the server's format_seconds (templatetags/dashboard.py): "45 s", "12 min 05 s", "3 h 07 min".
  function formatDuration(ms) {
    let seconds = Math.max(0, Math.floor(ms / 1000));
    if (seconds < 60) return seconds + " s";
    let minutes = Math.floor(seconds / 60);
    seconds %= 60;
    if (minutes < 60) return minutes + " min" + (seconds ? " " + String(seconds).padStart(2, "0") + " s" : "");
    let hours = Math.floor(minutes / 60);
    minutes %= 60;
    if (hours < 48) return hours + " h" + (minutes ? " " + String(minutes).padStart(2, "0") + " min" : "");
    const days = Math.floor(hours / 24);
    hours %= 24;
    return days + " d" + (hours ? " " + hours + " h" : "");
  }

  function timeOfDay(iso) {
    return new Date(iso).toISOString().slice(11, 19);
  }

  function renderSteps(panel, steps) {
    steps.forEach(function (step) {
      const row = panel.querySelector('[data-step="' + step.position + '"]');
      if (!row) return;
      setBadge(row.querySelector('[data-role="step-state"]'), step.state);
      row.querySelector('[data-role="step-attempts"]').textContent = step.attempts;
      const duration = row.querySelector('[data-role="step-duration"]');
      if (step.started_at) {
        const end = step.finished_at ? Date.parse(step.finished_at) : Date.now();
        duration.textContent = formatDuration(end - Date.parse(step.started_at));
      }
      const progress = step.progress || {};
      row.querySelector('[data-role="step-progress"]').textContent =
        progress.total ? progress.done + " / " + progress.total : "";
      const error = row.querySelector('[data-role="step-error"]');
      error.hidden = !step.error;
      error.textContent = step.error ? step.error.message : "";
    });
  }

  function renderLog(panel, lines) {
    const log = panel.querySelector('[data-role="op-log"]');
    const rendered = log.querySelectorAll(".log-line");
    const last = rendered.length ? micros(rendered[rendered.length - 1].dataset.at) : -1;
    const fresh = lines.filter(function (line) { return micros(line.at) > last; });
    if (!fresh.length) return;
    const stuck = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    const empty = log.querySelector('[data-role="log-empty"]');
    if (empty) empty.remove();
    fresh.forEach(function (line) {
      const span = document.createElement("span");
      span.className = "log-line log-" + line.level;
      span.dataset.at = line.at;
      const time = document.createElement("time");
      time.textContent = timeOfDay(line.at);
      span.appendChild(time);
      if (line.step) {
        span.appendChild(document.createTextNode(" "));
        const step = document.createElement("span");
        step.className = "log-step";
        step.textContent = line.step;
        span.appendChild(step);
      }
      span.appendChild(document.createTextNode(" " + line.message + "\n"));
      log.appendChild(span);
    });
    // Follow the tail only if the reader was already at the bottom.
    if (stuck) log.scrollTop = log.scrollHeight;
  }

  function renderOperation(panel, op) {
    panel.dataset.state = op.state;
    setBadge(panel.querySelector('[data-role="op-state"]'), op.state);
    const percent = Math.round(op.progress);
    const bar = panel.querySelector('[data-role="op-progress-bar"]');
    bar.style.width = percent + "%";
    bar.className = "progress-bar progress-" + op.state;
    panel.querySelector('[data-role="op-progress"]').setAttribute("aria-valuenow", String(percent));
    panel.querySelector('[data-role="op-progress-label"]').textContent = percent + "%";
    const error = panel.querySelector('[data-role="op-error"]');
    error.hidden = !op.error;
    if (op.error) {
      error.textContent = "";
      const code = document.createElement("strong");
      code.textContent = op.error.code;
      error.appendChild(code);
      error.appendChild(document.createTextNode(": " + op.error.message));
    }
    const cancel = panel.querySelector('[data-role="op-cancel"]');
    if (cancel) {
      if (ACTIVE.indexOf(op.state) < 0) {
        cancel.hidden = true;
      } else if (op.cancel_requested_at) {
        const button = cancel.querySelector("button");
        button.disabled = true;
        button.textContent = "Cancelling…";
      }
    }
    renderSteps(panel, op.steps || []);
    renderLog(panel, op.log || []);
  }

  function renderCluster(cluster) {
    setBadge(document.querySelector('[data-role="cluster-status"]'), cluster.status);
    const reason = document.querySelector('[data-role="cluster-status-reason"]');
    if (reason) {
      reason.hidden = !cluster.status_reason;
      reason.textContent = cluster.status_reason;
    }
    const bootstrap = document.querySelector('[data-role="bootstrap"]');
    if (bootstrap && bootstrap.value !== cluster.bootstrap_servers) bootstrap.value = cluster.bootstrap_servers;
    (cluster.broker_nodes || []).forEach(function (broker) {
      const segment = document.querySelector('.broker-seg[data-broker="' + broker.node_id + '"]');
      if (!segment) return;
      segment.className = "broker-seg broker-" + broker.state;
      segment.title = "broker " + broker.node_id + " · " + broker.state + (broker.endpoint ? " · " + broker.endpoint : "");
    });
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (response) {
        if (!response.ok) throw new Error(url + " answered " + response.status);
        return response.json();
      }
    );
  }

  function follow(panel) {
    const followsCluster = Boolean(document.querySelector('[data-role="cluster-status"]'));
    let delay = POLL_MS;

    function tick() {
      if (document.hidden) {
        setTimeout(tick, POLL_MS);
        return;
      }
      const requests = [getJson(panel.dataset.operationUrl)];
      if (followsCluster) requests.push(getJson(panel.dataset.clusterUrl));
      Promise.all(requests)
        .then(function (answers) {
          renderOperation(panel, answers[0]);
          if (answers[1]) renderCluster(answers[1]);
          delay = POLL_MS;
          if (ACTIVE.indexOf(answers[0].state) >= 0) {
            setTimeout(tick, delay);
          } else if (followsCluster) {
            // The cluster's final status is written just after the operation finishes.
            setTimeout(function () { getJson(panel.dataset.clusterUrl).then(renderCluster).catch(function () {}); }, POLL_MS);
          }
        })
        .catch(function () {
          delay = Math.min(delay * 2, MAX_BACKOFF_MS);
          setTimeout(tick, delay);
        });
    }

    setTimeout(tick, POLL_MS);
  }

  // monitoring.js hands over the panel of an operation that started while the page was open.
  window.kcpFollowOperation = function (panel) {
    if (panel && ACTIVE.indexOf(panel.dataset.state) >= 0) follow(panel);
  };

  document.addEventListener("DOMContentLoaded", function () {
    window.kcpFollowOperation(document.getElementById("operation"));
  });
})();
