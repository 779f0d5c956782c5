/**
 * Server-side printing: the `meta.k8s.io/v1 Table` that kubectl asks for
 * (`Accept: application/json;as=Table;...`) so that `kubectl get` shows the
 * same columns as `flotilla get`. Wide-only columns get priority 1.
 */
import type { Event, KubeObject, Pod } from '../model/k8s-types';
import { buildTable, type PrintContext } from '../tables/printers';
import type { KindName } from '../tables/kinds';
import { formatAge, formatLabels, orNone } from '../tables/format';

/** A column of a Table. */
interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

/** True when the Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  return /as=Table/.test(accept ?? '') && /g=meta\.k8s\.io/.test(accept ?? '');
}

/** What a table needs besides the objects. */
export interface TableContext {
  now: number;
  pods: () => Pod[];
  /** `Object` to embed whole objects in rows; metadata only otherwise. */
  includeObject?: string | null;
}

/** The Table of `objects` of `kind`, with `resourceVersion` as its version. */
export function toTable(
  kind: string,
  objects: KubeObject[],
  resourceVersion: string,
  ctx: TableContext,
): unknown {
  const { headers, wideHeaders, rows } = cellsOf(kind, objects, ctx);
  const columnDefinitions: ColumnDefinition[] = [
    ...headers.map((h) => column(h, 0)),
    ...wideHeaders.map((h) => column(h, 1)),
  ];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions,
    rows: objects.map((obj, i) => ({ cells: rows[i], object: rowObject(obj, ctx) })),
  };
}

// kubectl prefixes the `name`-format column with the kind when it prints
// several kinds at once.
function column(name: string, priority: number): ColumnDefinition {
  const format = name === 'NAME' ? 'name' : '';
  return { name, type: 'string', format, description: name, priority };
}

function rowObject(obj: KubeObject, ctx: TableContext): unknown {
  if (ctx.includeObject === 'Object') return obj;
  if (ctx.includeObject === 'None') return undefined;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

interface Cells {
  headers: string[];
  wideHeaders: string[];
  rows: string[][];
}

const CLI_KINDS = new Set(['Node', 'Pod', 'Deployment', 'Service']);

function cellsOf(kind: string, objects: KubeObject[], ctx: TableContext): Cells {
  if (CLI_KINDS.has(kind)) return fromCliPrinter(kind as KindName, objects, ctx);
  const columns = EXTRA_COLUMNS[kind] ?? EXTRA_COLUMNS.default;
  return {
    headers: columns.headers,
    wideHeaders: columns.wideHeaders,
    rows: objects.map((o) => columns.row(o, ctx.now)),
  };
}

// The CLI's printer gives the narrow and the wide table; the wide one's
// extra columns are the ones kubectl shows only with -o wide.
function fromCliPrinter(kind: KindName, objects: KubeObject[], ctx: TableContext): Cells {
  const print: PrintContext = { now: ctx.now, wide: true };
  if (kind === 'Node') print.pods = ctx.pods();
  const wide = buildTable(kind, objects, print);
  const narrow = buildTable(kind, [], { ...print, wide: false });
  return {
    headers: narrow.headers,
    wideHeaders: wide.headers.slice(narrow.headers.length),
    rows: wide.rows,
  };
}

interface ExtraColumns {
  headers: string[];
  wideHeaders: string[];
  /** Every cell of a row, narrow columns then wide ones. */
  row: (o: KubeObject, now: number) => string[];
}

const EXTRA_COLUMNS: Record<string, ExtraColumns> = {
  ReplicaSet: {
    headers: ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'],
    wideHeaders: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    row: (o, now) => {
      const rs = o as KubeObject & ReplicaSetShape;
      const containers = rs.spec?.template?.spec?.containers ?? [];
      return [
        rs.metadata?.name ?? '',
        String(rs.spec?.replicas ?? 0),
        String(rs.status?.replicas ?? 0),
        String(rs.status?.readyReplicas ?? 0),
        formatAge(rs.metadata?.creationTimestamp, now),
        orNone(containers.map((c) => c.name).join(',')),
        orNone(containers.map((c) => c.image ?? '').join(',')),
        formatLabels(rs.spec?.selector?.matchLabels),
      ];
    },
  },
  Event: {
    headers: ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'],
    wideHeaders: ['NAME'],
    row: (o, now) => {
      const e = o as Event;
      const involved = e.involvedObject ?? {};
      return [
        formatAge(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp, now),
        e.type ?? 'Normal',
        e.reason ?? '',
        `${(involved.kind ?? '').toLowerCase()}/${involved.name ?? ''}`,
        e.message ?? '',
        e.metadata?.name ?? '',
      ];
    },
  },
  Namespace: {
    headers: ['NAME', 'STATUS', 'AGE'],
    wideHeaders: [],
    row: (o, now) => [
      o.metadata?.name ?? '',
      'Active',
      formatAge(o.metadata?.creationTimestamp, now),
    ],
  },
  default: {
    headers: ['NAME', 'AGE'],
    wideHeaders: [],
    row: (o, now) => [o.metadata?.name ?? '', formatAge(o.metadata?.creationTimestamp, now)],
  },
};

interface ReplicaSetShape {
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> };
    template?: { spec?: { containers?: { name: string; image?: string }[] } };
  };
  status?: { replicas?: number; readyReplicas?: number };
}
