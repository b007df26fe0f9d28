// A bar chart in plain SVG (no chart library to vendor): one bar per label, values written on the bars.
const NS = "http://www.w3.org/2000/svg";

export function barChart(rows, { title, unit = "" }) {
  const width = 520, barHeight = 26, gap = 8, labelWidth = 70, height = rows.length * (barHeight + gap) + gap;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const svg = el("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  svg.append(el("title", {}, title));
  rows.forEach((r, i) => {
    const y = gap + i * (barHeight + gap);
    const w = Math.max(2, ((width - labelWidth - 60) * r.value) / max);
    svg.append(el("text", { x: 0, y: y + barHeight * 0.7 }, r.label));
    svg.append(el("rect", { x: labelWidth, y, width: w, height: barHeight, rx: 3 }));
    svg.append(el("text", { x: labelWidth + w + 6, y: y + barHeight * 0.7 }, `${r.value}${unit}`));
  });
  return svg;
}

function el(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}
