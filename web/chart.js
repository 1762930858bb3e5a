// Small live charts: one inline SVG sparkline per series, from the rates /api/v1/ipvs reports.

const SVG = "http://www.w3.org/2000/svg";
const POINTS = 30; // a minute at one sample every 2 s

/** Keeps the last POINTS samples of each named series. */
export class Series {
  constructor() { this.data = new Map(); }
  push(key, value) {
    let s = this.data.get(key);
    if (!s) { s = []; this.data.set(key, s); }
    s.push(Number(value) || 0);
    if (s.length > POINTS) s.shift();
  }
  get(key) { return this.data.get(key) || []; }
}

/** A labelled sparkline: `label`, an SVG line of `values`, and the last value formatted. */
export function sparkline(label, values, format, width = 120, height = 28) {
  const wrap = document.createElement("span");
  wrap.className = "chart";
  const name = document.createElement("span");
  name.textContent = label;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const last = values.length ? values[values.length - 1] : 0;
  svg.setAttribute("aria-label", `${label}: ${format(last)}`);
  const base = document.createElementNS(SVG, "line");
  base.setAttribute("x1", 0); base.setAttribute("x2", width);
  base.setAttribute("y1", height - 1); base.setAttribute("y2", height - 1);
  base.setAttribute("stroke", "#d9dde3");
  svg.append(base);
  if (values.length > 1) {
    const max = Math.max(...values, 1);
    const step = width / (POINTS - 1);
    const x0 = width - step * (values.length - 1);
    const pts = values.map((v, i) =>
      `${(x0 + i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
    const area = document.createElementNS(SVG, "polygon");
    area.setAttribute("points", `${x0.toFixed(1)},${height - 1} ${pts.join(" ")} ${width},${height - 1}`);
    area.setAttribute("fill", "rgba(11, 99, 197, .12)");
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#0b63c5");
    line.setAttribute("stroke-width", "1.5");
    svg.append(area, line);
  }
  const val = document.createElement("span");
  val.className = "val";
  val.textContent = format(last);
  wrap.append(name, svg, val);
  return wrap;
}

export function perSecond(v) {
  return `${v >= 100 ? Math.round(v) : Number(v.toFixed(1))}/s`;
}

export function bytesPerSecond(v) {
  const units = ["B/s", "kB/s", "MB/s", "GB/s"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
