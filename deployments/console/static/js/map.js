// Maps: Leaflet (vendored, docs/CONSOLE.md), tiles only when CONSOLE_TILE_URL names a server; without one the
// route and the vehicles draw on a blank background, so the console works offline.
import * as L from "/console/vendor/leaflet/leaflet-src.esm.js";

export { L };

export const GRADE_COLOURS = { low: "#2e7d32", medium: "#ef8f00", high: "#c62828" };
export const SPEEDING_COLOUR = "#8e24aa";

export function createMap(element, config, options = {}) {
  // Bounded zoom: without a tile layer Leaflet's max zoom is Infinity, and fitting one point would zoom to NaN.
  const map = L.map(element, { preferCanvas: true, keyboard: true, minZoom: 2, maxZoom: 18, ...options });
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { attribution: config.tile_attribution || "", maxZoom: 19 }).addTo(map);
  }
  map.setView([45.0, 7.0], 4);
  return map;
}

// Every vehicle on one canvas: updates land in a Map (the newest position per driver wins) and are drawn once per
// animation frame, so 2,000 drivers cost one redraw a frame, never 2,000 DOM markers. Frame stats: the work done
// in each frame callback (apply + draw; `drawMs` only the frames that drew) and the interval between frames,
// the last 2,000 of each.
export class VehicleLayer extends L.Layer {
  constructor(stats) {
    super();
    this.vehicles = new Map();
    this.pending = new Map();
    this.stats = stats;
    this.dirty = true;
    this.frame = this.frame.bind(this);
  }

  onAdd(map) {
    this.canvas = L.DomUtil.create("canvas", "vehicle-canvas", map.getContainer());
    this.canvas.setAttribute("aria-hidden", "true");
    this.context = this.canvas.getContext("2d");
    map.on("move zoom resize viewreset", this.invalidate, this);
    this.resize();
    this.running = true;
    this.last = null;
    requestAnimationFrame(this.frame);
    return this;
  }

  onRemove(map) {
    this.running = false;
    map.off("move zoom resize viewreset", this.invalidate, this);
    this.canvas.remove();
  }

  invalidate() { this.dirty = true; }

  update(message) {
    this.pending.set(message.driver_id, message);
  }

  resize() {
    const size = this._map.getSize(), ratio = window.devicePixelRatio || 1;
    this.canvas.width = size.x * ratio;
    this.canvas.height = size.y * ratio;
    this.canvas.style.width = `${size.x}px`;
    this.canvas.style.height = `${size.y}px`;
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.size = size;
  }

  frame(timestamp) {
    if (!this.running) return;
    const started = performance.now();
    if (this.pending.size) {
      for (const [driver, message] of this.pending) this.vehicles.set(driver, message);
      this.stats.updatesApplied += this.pending.size;
      this.pending.clear();
      this.dirty = true;
    }
    const drew = this.dirty;
    if (this.dirty) {
      const size = this._map.getSize();
      if (!this.size || size.x !== this.size.x || size.y !== this.size.y) this.resize();
      this.draw();
      this.dirty = false;
      this.stats.draws += 1;
    }
    const work = performance.now() - started;
    record(this.stats.workMs, work);
    if (drew) record(this.stats.drawMs, work);
    if (this.last !== null) record(this.stats.intervalMs, timestamp - this.last);
    this.last = timestamp;
    this.stats.frames += 1;
    this.stats.vehicles = this.vehicles.size;
    requestAnimationFrame(this.frame);
  }

  draw() {
    const ctx = this.context, map = this._map;
    ctx.clearRect(0, 0, this.size.x, this.size.y);
    ctx.fillStyle = "#0a58ca";
    ctx.beginPath();
    for (const v of this.vehicles.values()) {
      const p = map.latLngToContainerPoint([v.lat, v.lon]);
      if (p.x < -4 || p.y < -4 || p.x > this.size.x + 4 || p.y > this.size.y + 4) continue;
      ctx.moveTo(p.x + 3, p.y);
      ctx.arc(p.x, p.y, 3, 0, 2 * Math.PI);
    }
    ctx.fill();
  }

  bounds() {
    const points = [...this.vehicles.values()].map((v) => [v.lat, v.lon]);
    return points.length ? L.latLngBounds(points) : null;
  }
}

const KEEP = 2000;
function record(buffer, value) {
  buffer.push(value);
  if (buffer.length > KEEP) buffer.splice(0, buffer.length - KEEP);
}

export function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
