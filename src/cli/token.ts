/**
 * `flotilla token create|list|revoke` and `flotilla login|logout`: bearer
 * tokens for joining nodes, remote admins and read-only callers, and the
 * config file that keeps one for this user.
 */
import type { ApiClient } from '../api/client';
import { parseToken } from '../auth/token-format';
import { InvalidError } from '../errors';
import type { Output } from './context';
import { settleErrors } from './context';
import { formatAge, formatDuration, orNone, renderTable } from '../tables/format';

/** Where the token routes are. */
export const TOKENS_PATH = '/apis/flotilla.io/v1/tokens';

/** What a token may do. */
export type TokenRole = 'join' | 'admin' | 'read-only';

const ROLES: readonly TokenRole[] = ['join', 'admin', 'read-only'];

/** A token as `token list` shows it. */
export interface TokenInfo {
  id: string;
  role: TokenRole;
  created: string;
  expires: string | null;
  description: string;
}

/** The answer of POST /tokens: the only time the secret is shown. */
export interface CreatedToken extends TokenInfo {
  kind: 'Token';
  apiVersion: string;
  token: string;
}

/** The answer of GET /tokens. */
export interface TokenList {
  kind: 'TokenList';
  apiVersion: string;
  items: TokenInfo[];
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Seconds in a DURATION: a whole number with s, m, h or d (90s, 15m, 24h,
 * 7d), or 0 for a token that never expires. `flag` names the option in the
 * error.
 */
/** The longest lifetime the server accepts. */
const MAX_TTL_SECONDS = 3650 * 86_400;

export function parseTtl(text: string, flag = '--ttl'): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  const seconds = text.trim() === '0' ? 0 : m ? Number(m[1]) * UNITS[m[2]] : NaN;
  if (!Number.isSafeInteger(seconds)) {
    throw new InvalidError(
      `expected ${flag} as a duration like 90s, 15m, 24h or 7d, or 0 for never; got "${text}"`,
    );
  }
  if (seconds > MAX_TTL_SECONDS) {
    throw new InvalidError(`expected ${flag} of at most ten years (3650d); got "${text}"`);
  }
  return seconds;
}

/** Checks a --role value. */
export function parseRole(text: string, allowed: readonly TokenRole[] = ROLES): TokenRole {
  if ((allowed as readonly string[]).includes(text)) return text as TokenRole;
  const names = allowed.map((r) => `"${r}"`).join(', ');
  throw new InvalidError(`expected --role to be one of ${names}; got "${text}"`);
}

/** Options of `token create`, as commander hands them over. */
export interface CreateOptions {
  role?: string;
  ttl?: string;
  description?: string;
}

/** The request body of POST /tokens for these options, checked before anything is sent. */
export function createRequest(
  opts: CreateOptions,
  allowed: readonly TokenRole[] = ROLES,
): { role: TokenRole; ttlSeconds?: number; description?: string } {
  const role = parseRole(opts.role ?? 'join', allowed);
  const body: { role: TokenRole; ttlSeconds?: number; description?: string } = { role };
  if (opts.ttl !== undefined) body.ttlSeconds = parseTtl(opts.ttl);
  if (opts.description !== undefined) body.description = opts.description;
  return body;
}

/** Creates a token and checks the answer carries one. */
export async function createToken(
  client: ApiClient,
  body: ReturnType<typeof createRequest>,
): Promise<CreatedToken> {
  const created = await client.request<CreatedToken>('POST', TOKENS_PATH, body);
  if (typeof created?.token !== 'string') {
    throw new InvalidError('the server created a token but did not return it');
  }
  return created;
}

/**
 * `token create`: the token alone on stdout, so `T=$(flotilla token
 * create)` works; what it is on stderr.
 */
export async function runTokenCreate(
  client: ApiClient,
  opts: CreateOptions,
  output: Output,
): Promise<void> {
  const body = createRequest(opts);
  const created = await createToken(client, body);
  output.out(`${created.token}\n`);
  output.err(`token ${created.id} created: role ${created.role}, ${expiryText(created.expires)}\n`);
  if (body.ttlSeconds === 0 && created.expires) {
    output.err(`warning: --ttl 0 asked for no expiry, but the server set ${created.expires}\n`);
  }
}

function expiryText(expires: string | null): string {
  if (!expires) return 'never expires';
  const left = Date.parse(expires) - Date.now();
  if (Number.isNaN(left)) return `expires ${expires}`;
  return `expires ${expires} (in ${formatDuration(left)})`;
}

/** `token list`: a table, or the TokenList as JSON or YAML. */
export async function runTokenList(
  client: ApiClient,
  opts: { output?: string },
  output: Output,
  now = Date.now(),
): Promise<void> {
  const format = opts.output;
  if (format !== undefined && format !== 'json' && format !== 'yaml') {
    throw new InvalidError(`expected --output to be json or yaml, got "${format}"`);
  }
  const list = await client.request<TokenList>('GET', TOKENS_PATH);
  if (format === 'json') return output.out(JSON.stringify(list, null, 4) + '\n');
  if (format === 'yaml') {
    const YAML = await import('yaml');
    return output.out(YAML.stringify(list));
  }
  const items = list?.items ?? [];
  if (items.length === 0) {
    output.err('No tokens found.\n');
    return;
  }
  const rows = items.map((t) => [
    t.id,
    t.role,
    formatAge(t.created, now),
    expiresCell(t.expires, now),
    orNone(t.description),
  ]);
  output.out(renderTable({ headers: ['ID', 'ROLE', 'CREATED', 'EXPIRES', 'DESCRIPTION'], rows }));
}

// Time left, as kubectl writes ages; "never" and "expired" need no unit.
function expiresCell(expires: string | null, now: number): string {
  if (!expires) return 'never';
  const at = Date.parse(expires);
  if (Number.isNaN(at)) return '<unknown>';
  return at <= now ? 'expired' : `in ${formatDuration(at - now)}`;
}

/**
 * `token revoke ID...`: every argument is checked before any token is
 * revoked (a typo revokes nothing); then a failure does not stop the others.
 */
export async function runTokenRevoke(
  client: ApiClient,
  words: string[],
  output: Output,
): Promise<void> {
  const ids = words.map(tokenId);
  const errors: unknown[] = [];
  for (const id of ids) {
    try {
      await client.request('DELETE', `${TOKENS_PATH}/${encodeURIComponent(id)}`);
      output.out(`token ${id} revoked\n`);
    } catch (err) {
      errors.push(err);
    }
  }
  settleErrors(errors, output);
}

// A whole token names its id too, which saves looking it up.
function tokenId(word: string): string {
  if (word.startsWith('flt1.')) return parseToken(word, `"${word.slice(0, 12)}..."`).id;
  if (/^[0-9a-f]{12}$/.test(word)) return word;
  throw new InvalidError(`expected a token ID (12 hex digits, as token list shows), got "${word}"`);
}

/**
 * `flotilla login`: pins the CA from the token, proves the token works by
 * reading /version with it, and only then saves server, token and CA.
 */
export async function runLogin(
  server: string | undefined,
  token: string | undefined,
  file: string,
  output: Output,
): Promise<void> {
  if (server === undefined || token === undefined) {
    throw new InvalidError('login needs --server URL and --token TOKEN');
  }
  parseToken(token, '--token');
  const { ApiClient } = await import('../api/client');
  const client = new ApiClient({ server, token });
  const version = await client.request<{ gitVersion?: string }>('GET', '/version');
  const caCert = await client.pinnedCa();
  const { writeConfig } = await import('./config-file');
  writeConfig(file, { server: client.address, token, caCert });
  const serverVersion = version?.gitVersion ? ` (server ${version.gitVersion})` : '';
  output.out(`logged in to ${client.address}${serverVersion}; saved to ${file}\n`);
}

/** `flotilla logout`: forgets the saved server and token. */
export async function runLogout(file: string, output: Output): Promise<void> {
  const { removeConfig } = await import('./config-file');
  if (removeConfig(file)) output.out(`removed ${file}\n`);
  else output.err(`not logged in: ${file} does not exist\n`);
}
