import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Key under which scripts/build-binary.sh embeds better-sqlite3's addon. */
export const SQLITE_ADDON_ASSET = 'better_sqlite3.node';

/** The part of `node:sea` used here; Node before 20.12 has no such module. */
interface SeaModule {
  isSea(): boolean;
  getRawAsset(key: string): ArrayBuffer;
}

let cachedPath: string | undefined;

/**
 * Where better-sqlite3 should load its native addon from: inside the single
 * executable, a file extracted from the embedded asset; otherwise undefined,
 * so that better-sqlite3 finds the addon in node_modules as usual.
 *
 * A path, not the loaded addon, because that is what the `nativeBinding`
 * option's type accepts. better-sqlite3 loads it with
 * `__non_webpack_require__`, which the bundle defines (see
 * scripts/build-binary.sh): a SEA's own `require` loads only built-ins.
 */
export function betterSqliteNativeBinding(): string | undefined {
  const sea = loadSeaModule();
  if (sea === undefined || !sea.isSea()) return undefined;

  cachedPath ??= extractAddon(assetBytes(sea));
  return cachedPath;
}

function loadSeaModule(): SeaModule | undefined {
  try {
    return require('node:sea') as SeaModule;
  } catch {
    return undefined;
  }
}

/** A view of the asset inside the executable's memory, not a copy. */
function assetBytes(sea: SeaModule): Buffer {
  return Buffer.from(sea.getRawAsset(SQLITE_ADDON_ASSET));
}

/**
 * Writes the addon once per content: the hash in the file name means a file
 * that exists is the right one, and an upgraded binary gets a new file
 * instead of loading the old addon.
 */
function extractAddon(bytes: Buffer): string {
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const dir = cacheDir();
  const file = path.join(dir, `better_sqlite3-${digest}.node`);
  if (isIntact(file, bytes.length)) return file;

  // Rename is atomic, so a concurrent start sees no file or a whole one.
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    fs.writeFileSync(temp, bytes, { mode: 0o700 });
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
  return file;
}

function isIntact(file: string, size: number): boolean {
  try {
    return fs.statSync(file).size === size;
  } catch {
    return false;
  }
}

/**
 * The user's cache, or a per-user folder in the temp dir. Shared temp dirs
 * let anyone create names first, so the folder must be ours and closed to
 * others before we load code from it.
 */
function cacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const uid = process.getuid?.() ?? 0;
  const dir = xdg
    ? path.join(xdg, 'flotilla')
    : path.join(os.tmpdir(), `flotilla-${uid}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });

  const stat = fs.statSync(dir);
  if (stat.uid !== uid || (stat.mode & 0o022) !== 0) {
    throw new Error(
      `refusing to load the SQLite addon from ${dir}: expected a folder ` +
        `owned by uid ${uid} and writable only by it`,
    );
  }
  return dir;
}
