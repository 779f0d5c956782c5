/**
 * Text helpers shared by the printers: kubectl's age notation, its column
 * layout and its way of writing label maps.
 */

/** Rows of cells under upper-case headers, printed as aligned columns. */
export interface Table {
  headers: string[];
  rows: string[][];
}

// kubectl pads every column but the last to its widest cell plus three
// spaces, and never narrower than six.
const PADDING = 3;
const MIN_WIDTH = 6;

/** Lays out a table the way kubectl's tab writer does. */
export function renderTable(table: Table): string {
  const lines = [table.headers, ...table.rows];
  const widths = table.headers.map((_, col) =>
    Math.max(MIN_WIDTH, ...lines.map((cells) => (cells[col] ?? '').length + PADDING)),
  );
  return lines
    .map((cells) =>
      cells
        .map((cell, col) => (col === cells.length - 1 ? cell : cell.padEnd(widths[col])))
        .join(''),
    )
    .map((line) => line.trimEnd() + '\n')
    .join('');
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

/**
 * Writes a duration as kubectl's AGE column does: precise when short,
 * coarser as it grows (`45s`, `3m12s`, `15m`, `5h4m`, `20h`, `3d2h`, `20d`,
 * `2y30d`, `9y`).
 */
export function formatDuration(ms: number): string {
  const seconds = Math.floor(ms / SECOND);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;

  const minutes = Math.floor(ms / MINUTE);
  if (minutes < 10) return withRemainder(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;

  const hours = Math.floor(ms / HOUR);
  if (hours < 8) return withRemainder(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;

  const days = Math.floor(ms / DAY);
  if (days < 8) return withRemainder(days, 'd', hours % 24, 'h');
  if (days < 730) return `${days}d`;

  const years = Math.floor(ms / YEAR);
  if (years < 8) return withRemainder(years, 'y', days % 365, 'd');
  return `${years}y`;
}

function withRemainder(major: number, unit: string, minor: number, minorUnit: string): string {
  return minor === 0 ? `${major}${unit}` : `${major}${unit}${minor}${minorUnit}`;
}

/** The age of an object created at `timestamp`, or `<unknown>`. */
export function formatAge(timestamp: string | undefined, now: number): string {
  const created = timestamp ? Date.parse(timestamp) : NaN;
  if (Number.isNaN(created)) return '<unknown>';
  return formatDuration(now - created);
}

/** `k=v,k2=v2` in key order, or `<none>` for an empty map. */
export function formatLabels(labels: Record<string, string> | undefined): string {
  const pairs = Object.entries(labels ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${value}`);
  return pairs.length ? pairs.join(',') : '<none>';
}

/** A timestamp in the long form `kubectl describe` uses. */
export function formatTimestamp(timestamp: string | undefined): string {
  const time = timestamp ? Date.parse(timestamp) : NaN;
  return Number.isNaN(time) ? '<unknown>' : new Date(time).toUTCString();
}

/** A cell value, with `<none>` for a missing or empty one. */
export function orNone(value: string | number | undefined | null): string {
  return value === undefined || value === null || value === '' ? '<none>' : String(value);
}
