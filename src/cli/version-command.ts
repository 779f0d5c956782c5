import type { ApiClient } from '../api/client';
import type { VersionInfo } from '../model/k8s-types';
import { VERSION } from '../version';
import type { Output } from './context';

/** Runs `flotilla version`: the client's version, then the server's. */
export async function runVersion(
  client: () => ApiClient,
  opts: { client?: boolean },
  output: Output,
): Promise<void> {
  output.out(`Client Version: v${VERSION}\n`);
  if (opts.client) return;

  const info = await client().request<VersionInfo>('GET', '/version');
  output.out(`Server Version: ${info?.gitVersion ?? 'unknown'}\n`);
}
