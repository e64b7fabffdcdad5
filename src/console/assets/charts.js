// Pictures drawn by the console itself (SVG), each also read out as a sentence of its numbers.

import { el, svg } from './ui.js';

/** A horizontal bar chart: one row per entry, its share of `total` drawn, its count written
 * (with the share as a percentage, unless `shares` is false: counts against the largest). */
export function barChart(id, title, entries, total, { shares = true } = {}) {
  const rowHeight = 28;
  const width = 400;
  const labelWidth = 120;
  const barWidth = width - labelWidth - 100;
  const height = Math.max(1, entries.length) * rowHeight + 4;
  // Read out as one sentence: the picture's numbers, not only its title.
  const spoken = entries.map(([label, value]) => `${label ?? '(unknown)'}: ${value}`).join(', ');
  const chart = svg('svg', { id, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${title}. ${spoken || 'none'}${shares ? ` of ${total}` : ''}` },
    svg('title', {}, title));
  entries.forEach(([label, value], index) => {
    const y = index * rowHeight + 2;
    const share = total > 0 ? value / total : 0;
    const name = String(label ?? '(unknown)');
    const shortLabel = name.length > 13 ? `${name.slice(0, 12)}…` : name;
    chart.append(
      svg('text', { x: 0, y: y + 19 }, svg('title', {}, name), shortLabel),
      svg('rect', { class: 'track', x: labelWidth, y: y + 4, width: barWidth, height: rowHeight - 8, rx: 3 }),
      svg('rect', { class: 'bar', x: labelWidth, y: y + 4, width: Math.max(share > 0 ? 2 : 0, share * barWidth), height: rowHeight - 8, rx: 3 }),
      svg('text', { class: 'value', x: labelWidth + barWidth + 6, y: y + 19 },
        shares ? `${value} · ${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%` : String(value)));
  });
  if (entries.length === 0) chart.append(svg('text', { class: 'value', x: 0, y: 17 }, 'none'));
  return el('figure', { class: 'chart panel' }, el('figcaption', {}, el('strong', {}, title)), chart);
}
