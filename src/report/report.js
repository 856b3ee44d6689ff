// textcluster report: draws the embedded data (#report-data) with SVG. No network, no
// libraries. Every text from the data goes through textContent, never innerHTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const errors = document.getElementById("errors");
  function reportError(message) {
    const li = document.createElement("li");
    li.textContent = String(message);
    errors.appendChild(li);
    errors.hidden = false;
  }
  window.addEventListener("error", (e) => reportError(e.message || e));

  const data = JSON.parse(document.getElementById("report-data").textContent);
  // Heatmaps above this many clusters are drawn on a canvas instead of one SVG cell per pair.
  const SVG_HEATMAP_MAX = 150;
  // Bubble labels are drawn for at most this many clusters (the largest); others on hover.
  const MAX_BUBBLE_LABELS = 60;
  const TOP_TERMS = 30;
  const state = { clustering: 0, cluster: 0, lambda: 0.6 };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function color(id) {
    return "hsl(" + ((id * 137.508) % 360).toFixed(1) + ", 55%, 55%)";
  }
  // The unsettled flag informs only while it is rare: when more than a quarter of the
  // clusters are still moving, the fit as a whole had not settled and the header says so.
  function informative(v) {
    return v.clusters.filter((c) => c.unsettled).length * 4 <= v.clusters.length;
  }

  function fmt(v, digits) {
    return typeof v === "number" ? v.toFixed(digits) : String(v);
  }
  function cosine(view, a, b) {
    if (a === b) return 1;
    if (a > b) [a, b] = [b, a];
    const k = view.clusters.length;
    // Upper triangle, row by row: row a starts after sum_{i<a} (k-1-i) entries.
    const index = a * (2 * k - a - 1) / 2 + (b - a - 1);
    return view.similarity[index] / 1000;
  }
  function label(cluster) {
    return cluster.id + ": " + cluster.keywords.slice(0, 3).join(" ");
  }

  function renderHeader() {
    document.getElementById("out").textContent = data.out;
    document.getElementById("run").textContent =
      "run " + data.run.run_id + ", " + data.run.status + ", textcluster " + data.run.tool_version;
    const select = document.getElementById("partition");
    select.textContent = "";
    data.clusterings.forEach((c, i) => select.appendChild(el("option", { value: String(i) }, c.key || "(unpartitioned)")));
    select.value = String(state.clustering);
    document.getElementById("partition-picker").hidden = data.clusterings.length < 2;
    select.onchange = () => {
      state.clustering = Number(select.value);
      state.cluster = largest(view());
      renderClustering();
    };
  }

  function view() {
    return data.clusterings[state.clustering];
  }
  function largest(v) {
    let best = 0;
    v.clusters.forEach((c, i) => { if (c.size > v.clusters[best].size) best = i; });
    return best;
  }

  function renderMap(v) {
    const root = document.getElementById("map");
    root.textContent = "";
    const W = 560, H = 480, pad = 40;
    const s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, class: "map" });
    const xs = v.clusters.map((c) => c.x), ys = v.clusters.map((c) => c.y);
    const span = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 1e-9);
    const cx = (Math.max(...xs) + Math.min(...xs)) / 2, cy = (Math.max(...ys) + Math.min(...ys)) / 2;
    const scale = (Math.min(W, H) - 2 * pad) / span;
    const total = v.clusters.reduce((a, c) => a + c.size, 0) || 1;
    // Bubble areas add up to an eighth of the plot.
    const areaScale = (W * H * 0.125) / total;
    s.appendChild(svg("line", { x1: pad / 2, y1: H / 2, x2: W - pad / 2, y2: H / 2, class: "axis" }));
    s.appendChild(svg("line", { x1: W / 2, y1: pad / 2, x2: W / 2, y2: H - pad / 2, class: "axis" }));
    const byRank = v.clusters.map((c, i) => i).sort((a, b) => v.clusters[b].size - v.clusters[a].size || a - b);
    const labelled = new Set(byRank.slice(0, MAX_BUBBLE_LABELS));
    // Largest first, so small bubbles stay on top and clickable.
    for (const i of byRank) {
      const c = v.clusters[i];
      const x = W / 2 + (c.x - cx) * scale, y = H / 2 - (c.y - cy) * scale;
      const r = Math.max(Math.sqrt((c.size * areaScale) / Math.PI), c.size > 0 ? 2 : 1);
      const g = svg("g", { class: "bubble-group" });
      const circle = svg("circle", {
        cx: x.toFixed(1), cy: y.toFixed(1), r: r.toFixed(1), fill: color(c.id),
        class: "bubble" + (i === state.cluster ? " selected" : ""), "data-cluster": String(c.id),
      });
      circle.appendChild(svg("title", {}, label(c) + "\n" + c.size + " documents" +
        (c.mean_similarity != null ? "\nmean cosine to centroid " + fmt(c.mean_similarity, 3) : "")));
      circle.addEventListener("click", () => select(i));
      circle.addEventListener("mouseenter", () => showDetails(v, i));
      g.appendChild(circle);
      if (labelled.has(i)) {
        const text = svg("text", { x: x.toFixed(1), y: (y + 4).toFixed(1), class: "bubble-label" }, label(c));
        text.dataset.positions = [y + 4, y - r - 4, y + r + 12].map((p) => p.toFixed(1)).join(" ");
        g.appendChild(text);
      }
      s.appendChild(g);
    }
    root.appendChild(s);
    placeLabels(s, W, H);
  }

  // Labels of larger bubbles are placed first, on the bubble, above it or below it; a label
  // that would overlap one already placed (or leave the plot) is shown only on hover. The
  // count of overlapping visible labels is recorded for the tests (always 0).
  function placeLabels(s, W, H) {
    const placed = [];
    const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    const inside = (b) => b.x >= 0 && b.y >= 0 && b.x + b.width <= W && b.y + b.height <= H;
    for (const text of s.querySelectorAll(".bubble-label")) {
      let box = null;
      for (const y of text.dataset.positions.split(" ")) {
        text.setAttribute("y", y);
        const b = text.getBBox();
        if (inside(b) && !placed.some((p) => overlaps(p, b))) { box = b; break; }
      }
      if (box) {
        placed.push(box);
      } else {
        text.setAttribute("y", text.dataset.positions.split(" ")[0]);
        text.classList.add("on-hover");
      }
    }
    let n = 0;
    for (let i = 0; i < placed.length; i++) for (let j = i + 1; j < placed.length; j++) if (overlaps(placed[i], placed[j])) n++;
    s.setAttribute("data-label-overlaps", String(n));
    s.setAttribute("data-labels-shown", String(placed.length));
  }

  function showDetails(v, i) {
    const c = v.clusters[i];
    const d = document.getElementById("details");
    d.textContent = "";
    d.appendChild(el("strong", {}, "cluster " + c.id));
    d.appendChild(el("span", {}, " · " + c.size + " documents" +
      (c.mean_similarity != null ? " · mean cosine " + fmt(c.mean_similarity, 3) : "") +
      (c.ambiguous_share != null ? " · ambiguous " + fmt(100 * c.ambiguous_share, 1) + "%" : "") +
      (c.unsettled && informative(v) ? " · unsettled: " + c.moved_last_3 + " documents joined or left in the last 3 rounds" : "")));
    d.appendChild(el("div", { class: "keywords" }, c.keywords.join(", ")));
  }

  function relevantTerms(v, c) {
    const lambda = state.lambda;
    const rows = c.term_ids.map((t, j) => ({
      term: v.terms[t],
      logp: c.log_p[j],
      logpw: v.log_p_term[t],
    }));
    rows.forEach((r) => { r.relevance = lambda * r.logp + (1 - lambda) * (r.logp - r.logpw); });
    rows.sort((a, b) => b.relevance - a.relevance || (a.term < b.term ? -1 : 1));
    return rows.slice(0, TOP_TERMS);
  }

  function renderBars(v) {
    const c = v.clusters[state.cluster];
    document.getElementById("bars-title").textContent =
      "Top " + TOP_TERMS + " terms of cluster " + c.id + " (" + c.size + " documents)";
    const root = document.getElementById("bars");
    root.textContent = "";
    const rows = relevantTerms(v, c);
    if (rows.length === 0) {
      root.appendChild(el("p", { class: "empty" }, "This cluster has no terms (it is empty)."));
      return;
    }
    const total = v.clusters.reduce((a, x) => a + x.size, 0);
    const rowH = 16, left = 130, W = 520, H = rows.length * rowH + 24;
    const s = svg("svg", { width: W, height: H, class: "bars" });
    const widths = rows.map((r) => ({ corpus: Math.exp(r.logpw) * total, cluster: Math.exp(r.logp) * c.size }));
    const max = Math.max(...widths.map((w) => Math.max(w.corpus, w.cluster)), 1e-12);
    rows.forEach((r, j) => {
      const y = j * rowH + 4;
      const g = svg("g", { class: "bar-row" });
      g.appendChild(svg("text", { x: left - 6, y: y + 11, class: "bar-term" }, r.term));
      const wc = (widths[j].corpus / max) * (W - left - 10);
      const wk = (widths[j].cluster / max) * (W - left - 10);
      const corpus = svg("rect", { x: left, y: y, width: wc.toFixed(1), height: rowH - 3, class: "bar-total" });
      const inCluster = svg("rect", { x: left, y: y, width: wk.toFixed(1), height: rowH - 3, class: "bar-cluster" });
      const tip = r.term + ": p(w|c) " + Math.exp(r.logp).toExponential(2) + ", p(w) " +
        Math.exp(r.logpw).toExponential(2) + ", lift " + Math.exp(r.logp - r.logpw).toFixed(1);
      corpus.appendChild(svg("title", {}, tip));
      inCluster.appendChild(svg("title", {}, tip));
      g.appendChild(corpus);
      g.appendChild(inCluster);
      s.appendChild(g);
    });
    s.appendChild(svg("text", { x: left, y: H - 4, class: "legend" },
      "red: weight in this cluster · grey: weight in the whole corpus"));
    root.appendChild(s);
  }

  function renderExamples(v) {
    const c = v.clusters[state.cluster];
    const root = document.getElementById("examples");
    root.textContent = "";
    if (c.examples.length === 0) {
      root.appendChild(el("p", { class: "empty" }, "No example documents (input not readable when the report was made)."));
      return;
    }
    for (const e of c.examples) {
      const item = el("li", { class: "example" });
      item.appendChild(el("code", {}, e.doc_id));
      item.appendChild(el("span", { class: "similarity" }, " cosine " + fmt(e.similarity, 3) + " "));
      item.appendChild(el("div", { class: "example-text" }, e.text));
      root.appendChild(item);
    }
  }

  // The colour range spans the off-diagonal cosines only, so the diagonal (always 1) does not
  // wash the scale out; diagonal cells are drawn grey.
  function heatRange(v) {
    const k = v.clusters.length;
    let lo = Infinity, hi = -Infinity;
    for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) {
      const x = cosine(v, a, b);
      lo = Math.min(lo, x); hi = Math.max(hi, x);
    }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-6) hi = lo + 1e-6;
    return [lo, hi];
  }
  function heatColor(value, range) {
    const t = Math.max(0, Math.min(1, (value - range[0]) / (range[1] - range[0])));
    const l = 97 - 62 * t;
    return "hsl(215, 70%, " + l.toFixed(1) + "%)";
  }
  const DIAGONAL = "#e4e4e4";

  function renderHeatmap(v) {
    const root = document.getElementById("heatmap");
    root.textContent = "";
    const k = v.clusters.length;
    const threshold = v.merge_threshold;
    document.getElementById("heatmap-note").textContent = threshold != null
      ? "Outlined: pairs at or above merge_threshold " + threshold + "."
      : "merge_threshold is not set.";
    const size = Math.max(240, Math.min(640, k * 22));
    const cell = size / Math.max(k, 1);
    const range = heatRange(v);
    root.appendChild(heatLegend(range));
    if (k <= SVG_HEATMAP_MAX) {
      const s = svg("svg", { width: size + 40, height: size + 40, class: "heatmap" });
      v.order.forEach((a, row) => {
        s.appendChild(svg("text", { x: 36, y: 40 + (row + 0.7) * cell, class: "axis-label" }, String(v.clusters[a].id)));
        s.appendChild(svg("text", { x: 40 + (row + 0.5) * cell, y: 34, class: "axis-label centred col-label" }, String(v.clusters[a].id)));
        v.order.forEach((b, col) => {
          const value = cosine(v, a, b);
          const above = threshold != null && a !== b && value >= threshold;
          const rect = svg("rect", {
            x: (40 + col * cell).toFixed(2), y: (40 + row * cell).toFixed(2),
            width: cell.toFixed(2), height: cell.toFixed(2), fill: a === b ? DIAGONAL : heatColor(value, range),
            class: "cell" + (above ? " above-threshold" : "") + (a === b ? " diagonal" : ""),
          });
          rect.appendChild(svg("title", {}, v.clusters[a].id + " × " + v.clusters[b].id + ": " + value.toFixed(3)));
          rect.addEventListener("click", () => select(a));
          s.appendChild(rect);
        });
      });
      root.appendChild(s);
      return;
    }
    const canvas = el("canvas", { width: String(size), height: String(size), class: "heatmap-canvas" });
    const ctx = canvas.getContext("2d");
    v.order.forEach((a, row) => v.order.forEach((b, col) => {
      ctx.fillStyle = a === b ? DIAGONAL : heatColor(cosine(v, a, b), range);
      ctx.fillRect(col * cell, row * cell, Math.ceil(cell), Math.ceil(cell));
    }));
    canvas.addEventListener("click", (e) => {
      const r = canvas.getBoundingClientRect();
      const row = Math.floor((e.clientY - r.top) / cell);
      if (row >= 0 && row < k) select(v.order[row]);
    });
    root.appendChild(canvas);
  }

  // A colour scale for the heatmap: the off-diagonal range, low to high.
  function heatLegend(range) {
    const W = 220, H = 30, steps = 20;
    const s = svg("svg", { width: W, height: H, class: "heat-legend" });
    for (let i = 0; i < steps; i++) {
      const value = range[0] + ((i + 0.5) / steps) * (range[1] - range[0]);
      s.appendChild(svg("rect", { x: 30 + i * 8, y: 2, width: 8, height: 12, fill: heatColor(value, range) }));
    }
    s.appendChild(svg("text", { x: 26, y: 12, class: "axis-label" }, range[0].toFixed(2)));
    s.appendChild(svg("text", { x: 30 + steps * 8 + 4, y: 12, class: "axis-label start" }, range[1].toFixed(2)));
    s.appendChild(svg("text", { x: 30 + steps * 4, y: 27, class: "axis-label centred" }, "centroid cosine (diagonal grey)"));
    return s;
  }

  function renderSizes(v) {
    const root = document.getElementById("sizes");
    root.textContent = "";
    const sorted = v.clusters.map((c, i) => i).sort((a, b) => v.clusters[b].size - v.clusters[a].size || a - b);
    const left = 44, top = 24;
    const W = Math.max(320, Math.min(1100, sorted.length * 14)), H = 180;
    const bw = W / Math.max(sorted.length, 1);
    const max = Math.max(...v.clusters.map((c) => c.size), 1);
    const s = svg("svg", { width: W + left, height: H + top + 20, class: "sizes" });
    // The document axis: 0, half and the largest cluster.
    s.appendChild(svg("line", { x1: left - 2, y1: top, x2: left - 2, y2: top + H, class: "size-axis" }));
    for (const t of [0, Math.round(max / 2), max]) {
      const y = top + H - (t / max) * H;
      s.appendChild(svg("line", { x1: left - 5, y1: y, x2: left - 2, y2: y, class: "size-axis" }));
      s.appendChild(svg("text", { x: left - 7, y: y + 3, class: "axis-label" }, String(t)));
    }
    s.appendChild(svg("text", { x: 2, y: 10, class: "axis-label start" }, "documents"));
    const g = svg("g", { transform: "translate(" + left + "," + top + ")" });
    s.appendChild(g);
    sorted.forEach((i, j) => {
      const c = v.clusters[i];
      const h = (c.size / max) * H;
      const rect = svg("rect", {
        x: (j * bw).toFixed(2), y: (H - h).toFixed(2), width: Math.max(bw - 1, 0.5).toFixed(2),
        height: h.toFixed(2), fill: color(c.id), class: "size-bar",
      });
      rect.appendChild(svg("title", {}, label(c) + ": " + c.size + " documents"));
      rect.addEventListener("click", () => select(i));
      g.appendChild(rect);
      if (sorted.length <= 60) {
        g.appendChild(svg("text", { x: (j * bw + bw / 2).toFixed(1), y: H + 14, class: "axis-label centred" }, String(c.id)));
      }
      if (sorted.length <= 40) {
        g.appendChild(svg("text", { x: (j * bw + bw / 2).toFixed(1), y: (H - h - 2).toFixed(1), class: "size-count" }, String(c.size)));
      }
    });
    root.appendChild(s);
  }

  function renderTable(id, entries) {
    const table = document.getElementById(id);
    table.textContent = "";
    for (const [k, value] of entries) {
      const tr = el("tr");
      tr.appendChild(el("th", {}, k));
      tr.appendChild(el("td", {}, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)));
      table.appendChild(tr);
    }
  }

  function flatten(prefix, value, into) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) flatten(prefix ? prefix + "." + k : k, v, into);
    } else {
      into.push([prefix, value]);
    }
    return into;
  }

  function select(i) {
    state.cluster = i;
    const v = view();
    document.querySelectorAll(".bubble").forEach((b) => {
      b.classList.toggle("selected", Number(b.getAttribute("data-cluster")) === v.clusters[i].id);
    });
    showDetails(v, i);
    renderBars(v);
    renderExamples(v);
  }

  // The merge tree of `k = "auto"` (from the manifest's `merge` entry): per final cluster, its
  // pieces and the joins that made it, in the order they happened.
  function renderMerge(v) {
    const panel = document.getElementById("merge-panel");
    const root = document.getElementById("merge-tree");
    root.textContent = "";
    const m = v.figures && v.figures.merge;
    if (!m || !m.joins || m.joins.length === 0) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    document.getElementById("merge-note").textContent = m.n_after + " clusters from " + m.n_before +
      " pieces; groups joined while their average similarity was at least " + fmt(m.threshold, 4) + ".";
    const groups = new Map();
    m.mapping.forEach((final, piece) => {
      if (!groups.has(final)) groups.set(final, { pieces: [], joins: [] });
      groups.get(final).pieces.push(piece);
    });
    m.joins.forEach((j, step) => groups.get(m.mapping[j.a]).joins.push(
      "#" + (step + 1) + " " + j.a + "+" + j.b + " at " + fmt(j.similarity, 3)));
    [...groups.keys()].sort((a, b) => a - b).forEach((final) => {
      const g = groups.get(final);
      const li = document.createElement("li");
      li.className = "merge-group";
      li.textContent = "cluster " + final + " \u2190 " + (g.pieces.length === 1 ? "piece " : "pieces ") + g.pieces.join(", ") +
        (g.joins.length > 0 ? ": " + g.joins.join(", ") : " (kept as fitted)");
      root.appendChild(li);
    });
  }

  function renderClustering() {
    const v = view();
    document.getElementById("summary").textContent =
      (v.key || "(unpartitioned)") + ": " + v.clusters.length + " clusters, " + v.n_docs + " documents" +
      (v.clusters.some((c) => c.unsettled)
        ? (informative(v)
          ? ", still moving at the end of the fit: " + v.clusters.filter((c) => c.unsettled).map((c) => c.id).join(", ")
          : ", most clusters still moving at the end of the fit (" + v.clusters.filter((c) => c.unsettled).length + " of " + v.clusters.length + ")")
        : "");
    renderMap(v);
    renderHeatmap(v);
    renderMerge(v);
    renderSizes(v);
    renderTable("figures", v.figures ? flatten("", v.figures, []) : [["figures", "committed by an earlier run"]]);
    select(state.cluster);
  }

  try {
    const slider = document.getElementById("lambda");
    slider.value = String(state.lambda);
    document.getElementById("lambda-value").textContent = fmt(state.lambda, 2);
    slider.addEventListener("input", () => {
      state.lambda = Number(slider.value);
      document.getElementById("lambda-value").textContent = fmt(state.lambda, 2);
      renderBars(view());
    });
    renderHeader();
    renderTable("params", flatten("", data.run.spec, []));
    if (data.clusterings.length > 0) {
      state.cluster = largest(view());
      renderClustering();
    }
    document.body.setAttribute("data-ready", "1");
  } catch (e) {
    reportError(e && e.stack ? e.stack : e);
  }
})();
