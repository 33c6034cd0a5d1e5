// minewatch console: the few scripts of the server-rendered pages (no build step, no CDN).
"use strict";
const minewatch = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail);
      throw new Error(`${response.status}: ${detail}`);
    }
    return answer;
  }

  function common() {
    const lang = document.getElementById("lang");
    lang.addEventListener("click", () => {
      document.cookie = `minewatch_lang=${lang.dataset.lang}; path=/; SameSite=Strict; max-age=31536000`;
      location.reload();
    });
    const out = document.getElementById("sign-out");
    if (out) out.addEventListener("click", async () => {
      await post("/api/v1/auth/logout").catch(() => null);
      location.href = "/console/login";
    });
  }

  function login() {
    const form = document.getElementById("login");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await fetch("/api/v1/auth/login", {
        method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({username: form.username.value, password: form.password.value}),
      });
      if (!response.ok) {
        document.getElementById("login-error").hidden = false;
        return;
      }
      const next = new URLSearchParams(location.search).get("next") || "";
      // Only a page of the console: never another site.
      location.href = /^\/console\/[^/]/.test(next) ? next : "/console/";
    });
  }

  function board() {
    const root = document.getElementById("board");
    const mine = root.dataset.mine;
    const state = document.getElementById("stream-state");
    const message = document.getElementById("message");
    let refreshing = null;
    let again = false;

    function say(text) { message.textContent = text; message.hidden = false; }

    async function refresh() {
      if (refreshing) { again = true; return refreshing; }
      refreshing = (async () => {
        do {
          again = false;
          const response = await fetch(`/console/mines/${mine}/board/rows`, {credentials: "same-origin"});
          if (response.ok) root.innerHTML = await response.text();
        } while (again);
        const rows = Array.from(root.querySelectorAll("tr.alarm"));
        const newRed = rows.some((r) => r.classList.contains("grade-red") && !seen.has(r.dataset.alarmId));
        rows.forEach((r) => seen.add(r.dataset.alarmId));
        if (newRed) {  // restart the flash for each new red alarm
          document.body.classList.remove("flash");
          void document.body.offsetWidth;
          document.body.classList.add("flash");
        }
        root.dataset.refreshed = String(Date.now());
      })();
      try { await refreshing; } finally { refreshing = null; }
    }

    // Alarms already on the board; a red one not among them flashes the top bar.
    const seen = new Set(Array.from(root.querySelectorAll("tr.alarm")).map((r) => r.dataset.alarmId));
    const stream = new EventSource(`/api/v1/dispatch/alarms/stream?mine=${mine}`);
    stream.onopen = () => { state.textContent = "●"; document.body.dataset.stream = "open"; };
    stream.onerror = () => { state.textContent = "○"; document.body.dataset.stream = "closed"; };
    stream.addEventListener("alarm", () => refresh());
    stream.addEventListener("overflow", () => refresh());
    // A pre-alarm raised or cleared (a forecast reaching the alarm level): the board's
    // pre-alarm table and the incidents' pre-alarms are redrawn.
    stream.addEventListener("prealarm", () => refresh());
    // The time left to the level counts down between events.
    const minutes = document.documentElement.lang === "en" ? "min" : "分钟";
    setInterval(() => {
      for (const row of root.querySelectorAll("tr.prealarm[data-predicted]")) {
        const at = Number(row.dataset.predicted);
        const cell = row.querySelector("td.left");
        if (!row.dataset.predicted || !cell) continue;
        const left = at - Date.now() / 1000;
        if (left > 0) cell.textContent = `${(left / 60).toFixed(1)} ${minutes}`;
      }
    }, 5000);
    // Leaving the page ends the stream at once (a page kept in the back-forward cache would
    // otherwise hold it open).
    window.addEventListener("pagehide", () => stream.close());

    let current = null;
    let disposeIncident = false;  // the dispose dialog serves an alarm or a whole incident
    const step = async (id, action, body) => {
      try {
        // "incident-acknowledge" -> /alarms/{id}/incident/acknowledge (the alarm's incident)
        await post(`/api/v1/dispatch/alarms/${id}/${action.replace("-", "/")}`, body);
        say(`#${id}: ${action} ✓`);
      } catch (error) {
        say(`#${id}: ${error.message}`);
      }
      await refresh();
    };
    root.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      current = button.dataset.id;
      const action = button.dataset.action;
      if (action === "acknowledge" || action === "incident-acknowledge") step(current, action);
      else {
        disposeIncident = action === "incident-dispose";
        document.getElementById(`${action.replace("incident-", "")}-dialog`).showModal();
      }
    });
    document.querySelectorAll("dialog .close").forEach((b) => b.addEventListener("click", () => b.closest("dialog").close()));
    document.getElementById("shelve-form").addEventListener("submit", () => {
      const f = document.getElementById("shelve-form");
      step(current, "shelve", {reason: f.reason.value, minutes: Number(f.minutes.value)});
    });
    document.getElementById("dispose-form").addEventListener("submit", () => {
      const f = document.getElementById("dispose-form");
      const body = {cause: f.cause.value, measures: f.measures.value};
      if (f.open_reason.value) body.open_reason = f.open_reason.value;
      step(current, disposeIncident ? "incident-dispose" : "dispose", body);
    });
  }

  async function curve() {
    const chart = document.getElementById("chart");
    const d = chart.dataset;
    const labels = JSON.parse(d.labels);
    const params = new URLSearchParams({start: d.start, end: d.end, bucket: d.bucket});
    const response = await fetch(`/api/v1/points/${d.point}/readings?${params}`, {credentials: "same-origin"});
    const state = document.getElementById("chart-state");
    if (!response.ok) { state.textContent = `${response.status}`; return; }
    const buckets = await response.json();
    // The range's ends as points without values: the x axis shows the whole range asked for,
    // and the level lines run across it.
    const times = buckets.map((b) => Date.parse(b.time) / 1000);
    // (the first bucket may begin before the range: time_bucket floors it)
    const range = [Math.min(Date.parse(d.start) / 1000, times[0] ?? Infinity),
                   Math.max(Date.parse(d.end) / 1000, times[times.length - 1] ?? -Infinity)];
    const xs = [range[0], ...times, range[1]];
    const data = [xs, [null, ...buckets.map((b) => b.avg), null],
                  [null, ...buckets.map((b) => b.max), null]];
    const series = [{}, {label: `${labels.value} (${d.unit})`, stroke: "#1f5fbf", width: 1.5},
                    {label: labels.max, stroke: "#8aa9d6", width: 1, dash: [2, 2]}];
    const levels = [["alarm", "#e08a00"], ["poweroff", "#d11a1a"], ["restore", "#1a9a3a"]];
    for (const [key, color] of levels) {
      if (d[key] === "") continue;
      data.push(xs.map(() => Number(d[key])));
      series.push({label: `${labels[key]} ${d[key]}`, stroke: color, width: 1, dash: [6, 4], points: {show: false}});
    }
    // The forecast of a pre-alarm up now: its fitted line from the raise to the end of the
    // horizon (into the future: the x axis runs on to its end), as one more series.
    const forecasts = JSON.parse(d.forecasts || "[]");
    if (forecasts.length) {
      const extra = forecasts.flatMap((f) => f.points.map((p) => p[0]));
      const all = Array.from(new Set([...xs, ...extra])).sort((a, b) => a - b);
      const at = new Map(all.map((x, i) => [x, i]));
      const spread = (column) => {
        const out = all.map(() => null);
        xs.forEach((x, i) => { if (column[i] !== null) out[at.get(x)] = column[i]; });
        return out;
      };
      for (let k = 1; k < data.length; k++) data[k] = spread(data[k]);
      data[0] = all;
      for (let k = 3; k < data.length; k++) data[k] = all.map(() => data[k].find((v) => v !== null));
      const line = all.map(() => null);
      for (const f of forecasts) for (const [x, y] of f.points) line[at.get(x)] = y;
      data.push(line);
      series.push({label: labels.forecast, stroke: "#963cc8", width: 2, dash: [8, 4], spanGaps: true,
                   points: {show: true, size: 6}});
      range[1] = Math.max(range[1], ...extra);
      xs.splice(0, xs.length, ...all);
      chart.dataset.forecastsDrawn = String(forecasts.length);
    }
    // Episodes, calibrations, interruptions and pre-alarms as bands behind the curves (an open
    // one runs to the right edge).
    const bands = JSON.parse(d.bands);
    const fills = {episode: "rgba(224,120,0,0.16)", calibration: "rgba(31,111,209,0.16)",
                   interruption: "rgba(120,120,130,0.22)", prealarm: "rgba(150,60,200,0.14)"};
    let drawn = 0;
    const drawBands = (u) => {
      const {left, top, width: w, height: h} = u.bbox;
      const ctx = u.ctx;
      drawn = 0;
      ctx.save();
      for (const band of bands) {
        const x0 = Math.max(left, u.valToPos(band.from, "x", true));
        const x1 = Math.min(left + w, band.to === null ? left + w : u.valToPos(band.to, "x", true));
        if (!(x1 > x0)) continue;
        ctx.fillStyle = fills[band.kind] || fills.episode;
        ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
        drawn += 1;
      }
      ctx.restore();
      chart.dataset.bandsDrawn = String(drawn);
    };
    const width = Math.max(600, chart.clientWidth || 900);
    // Beijing time on the axis, whatever the browser's zone.
    const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Asia/Shanghai");
    new uPlot({width, height: 380, series, tzDate, hooks: {drawClear: [drawBands]},
               scales: {x: {time: true, range: () => range}}}, data, chart);
    chart.dataset.xMax = String(range[1]);
    chart.dataset.rendered = String(buckets.length);
    state.textContent = `${buckets.length} × ${d.bucket}`;
  }

  common();
  return {login, board, curve};
})();
