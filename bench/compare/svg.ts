/**
 * A hand-written SVG bar chart (no dependencies): one panel per operation, each with its own scale (logins and
 * userinfo differ by two orders of magnitude), one bar per server, the value on top of each bar.
 */
export interface ChartPanel {
  title: string;
  bars: {
    series: string;
    value: number | null /** A short label under the bar (e.g. a ratio to a peer). */;
    note?: string;
  }[];
}

const COLORS = ['#2b6cb0', '#38a169', '#dd6b20', '#805ad5', '#d53f8c', '#a0aec0'];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function formatValue(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

export function barChartSvg(options: {
  title: string;
  subtitle: string;
  series: string[];
  panels: ChartPanel[];
  unit: string;
}): string {
  const panelWidth = 190;
  const panelHeight = 220;
  const plotTop = 40;
  const plotHeight = 150;
  const marginLeft = 20;
  const headerHeight = 70;
  const legendRowHeight = 18;
  const legendWidth = (series: string) => 30 + series.length * 7;
  const width = marginLeft * 2 + panelWidth * options.panels.length;
  // The legend wraps onto as many rows as the chart's width needs.
  const legendRows: string[][] = [[]];
  let rowWidth = 0;
  for (const series of options.series) {
    if (rowWidth + legendWidth(series) > width - 2 * marginLeft && legendRows[legendRows.length - 1].length) {
      legendRows.push([]);
      rowWidth = 0;
    }
    legendRows[legendRows.length - 1].push(series);
    rowWidth += legendWidth(series);
  }
  const height = headerHeight + panelHeight + legendRows.length * legendRowHeight + 22;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(
    `<text x="${marginLeft}" y="26" font-size="17" font-weight="600" fill="#1a202c">${escapeXml(options.title)}</text>`,
  );
  out.push(`<text x="${marginLeft}" y="48" font-size="12" fill="#4a5568">${escapeXml(options.subtitle)}</text>`);
  options.panels.forEach((panel, index) => {
    const x0 = marginLeft + index * panelWidth;
    const y0 = headerHeight;
    const max = niceMax(1.1 * Math.max(0, ...panel.bars.map((bar) => bar.value ?? 0)));
    const barArea = panelWidth - 40;
    const barWidth = Math.min(42, (barArea / panel.bars.length) * 0.75);
    const gap = (barArea - barWidth * panel.bars.length) / (panel.bars.length + 1);
    out.push(`<g transform="translate(${x0},${y0})">`);
    out.push(
      `<text x="${panelWidth / 2}" y="16" font-size="13" font-weight="600" text-anchor="middle" fill="#1a202c">${escapeXml(panel.title)}</text>`,
    );
    out.push(
      `<text x="${panelWidth / 2}" y="31" font-size="10" text-anchor="middle" fill="#718096">${escapeXml(options.unit)} (0–${formatValue(max)})</text>`,
    );
    const baseY = plotTop + plotHeight;
    out.push(`<line x1="15" y1="${baseY}" x2="${panelWidth - 15}" y2="${baseY}" stroke="#cbd5e0"/>`);
    for (const fraction of [0.5, 1]) {
      const y = baseY - plotHeight * fraction;
      out.push(`<line x1="15" y1="${y}" x2="${panelWidth - 15}" y2="${y}" stroke="#edf2f7"/>`);
    }
    panel.bars.forEach((bar, barIndex) => {
      const seriesIndex = options.series.indexOf(bar.series);
      const x = 20 + gap + barIndex * (barWidth + gap);
      if (bar.value === null || !Number.isFinite(bar.value)) {
        out.push(
          `<text x="${x + barWidth / 2}" y="${baseY - 4}" font-size="10" text-anchor="middle" fill="#a0aec0">n/a</text>`,
        );
        return;
      }
      const h = Math.max(1, (bar.value / max) * plotHeight);
      out.push(
        `<rect x="${x.toFixed(1)}" y="${(baseY - h).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[seriesIndex % COLORS.length]}"><title>${escapeXml(`${bar.series}: ${formatValue(bar.value)} ${options.unit}`)}</title></rect>`,
      );
      out.push(
        `<text x="${(x + barWidth / 2).toFixed(1)}" y="${(baseY - h - 4).toFixed(1)}" font-size="10" text-anchor="middle" fill="#2d3748">${formatValue(bar.value)}</text>`,
      );
      if (bar.note)
        out.push(
          `<text x="${(x + barWidth / 2).toFixed(1)}" y="${baseY + 13}" font-size="10" text-anchor="middle" fill="#4a5568">${escapeXml(bar.note)}</text>`,
        );
    });
    out.push('</g>');
  });
  legendRows.forEach((row, rowIndex) => {
    const legendY = headerHeight + panelHeight + 14 + rowIndex * legendRowHeight;
    let legendX = marginLeft;
    for (const series of row) {
      const index = options.series.indexOf(series);
      out.push(
        `<rect x="${legendX}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[index % COLORS.length]}"/>`,
      );
      out.push(`<text x="${legendX + 17}" y="${legendY}" font-size="12" fill="#2d3748">${escapeXml(series)}</text>`);
      legendX += legendWidth(series);
    }
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
