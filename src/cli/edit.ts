import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ApiClient } from '../api/client';
import type { KubeObject } from '../model/k8s-types';
import { ApiError, InvalidError, ManifestError } from '../errors';
import type { Output } from './context';
import { formatWarning, validateManifest, type Locate } from './manifest-module';
import { objectPath, parseSingleTarget, type ResourceType } from '../tables/kinds';

const HEADER =
  '# Edit the object below and save to apply it; close without saving to cancel.\n' +
  '# Lines starting with "#" are ignored. status is not editable and is left out.\n' +
  '#\n';

/** What the environment decides about editing; tests pass their own. */
export interface EditEnvironment {
  editor: string;
  tmpDir: string;
}

/** The editor kubectl would pick: $EDITOR, then $VISUAL, then vi. */
export function editEnvironment(env: NodeJS.ProcessEnv = process.env): EditEnvironment {
  return { editor: env.EDITOR || env.VISUAL || 'vi', tmpDir: os.tmpdir() };
}

/**
 * Runs `flotilla edit KIND NAME`: opens the object in an editor and replaces
 * it with the result, guarded by the resourceVersion it was read at. Any
 * failure after editing keeps the edited file and says where it is.
 */
export async function runEdit(
  client: ApiClient,
  words: string[],
  output: Output,
  env: EditEnvironment = editEnvironment(),
): Promise<void> {
  const { type, name } = parseSingleTarget(words);
  if (type.kind !== 'Deployment' && type.kind !== 'Service') {
    throw new InvalidError(`${type.plural} cannot be edited`);
  }
  const current = await client.request<KubeObject>('GET', objectPath(type, name));
  const YAML = await import('yaml');
  const original = HEADER + YAML.stringify(editableView(type, current));

  const dir = fs.mkdtempSync(path.join(env.tmpDir, 'flotilla-edit-'));
  const file = path.join(dir, `${type.plural}-${name}.yaml`);
  fs.writeFileSync(file, original);
  runEditor(env.editor, file);

  const edited = fs.readFileSync(file, 'utf8');
  if (edited === original || stripComments(edited).trim() === '') {
    fs.rmSync(dir, { recursive: true, force: true });
    output.err('Edit cancelled, no changes made.\n');
    return;
  }
  try {
    await saveEdited(client, type, name, current, edited, file, output);
  } catch (err) {
    output.err(`A copy of your changes has been stored to "${file}"\n`);
    throw explainEditFailure(err, type, name);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

function editableView(type: ResourceType, obj: KubeObject): KubeObject {
  const { status: _status, ...rest } = obj;
  return { apiVersion: type.apiVersion, kind: type.kind, ...rest };
}

function runEditor(editor: string, file: string): void {
  // Through the shell like kubectl, so EDITOR may carry arguments ("code -w").
  const result = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'flotilla-edit', file], {
    stdio: 'inherit',
  });
  if (result.error) throw new InvalidError(`could not run editor "${editor}"`);
  if (result.status !== 0) {
    throw new InvalidError(`the editor "${editor}" exited with status ${result.status}`);
  }
}

function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');
}

async function saveEdited(
  client: ApiClient,
  type: ResourceType,
  name: string,
  current: KubeObject,
  edited: string,
  file: string,
  output: Output,
): Promise<void> {
  const { value, locate } = await parseEdited(edited, file);
  const { object, warnings } = validateManifest(value, { file, locate });
  for (const warning of warnings) output.err(formatWarning(warning));

  if (object.kind !== type.kind || object.metadata?.name !== name) {
    throw new InvalidError('the kind and name of an object cannot be changed by editing');
  }
  const resourceVersion = current.metadata?.resourceVersion;
  const metadata = { ...(object.metadata ?? {}), resourceVersion };
  await client.request('PUT', objectPath(type, name), { ...object, metadata });
  output.out(`${type.qualified}/${name} edited\n`);
}

async function parseEdited(
  text: string,
  file: string,
): Promise<{ value: unknown; locate: Locate }> {
  const YAML = await import('yaml');
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false });
  const [first] = doc.errors;
  if (first) {
    const pos = lineCounter.linePos(first.pos[0]);
    const where = { file, line: pos.line, column: pos.col };
    throw new ManifestError(first.message.split('\n')[0], where);
  }
  const locate: Locate = (fieldPath) => {
    const node = doc.getIn(fieldPath, true) as { range?: [number, number, number] } | undefined;
    if (!node?.range) return undefined;
    const pos = lineCounter.linePos(node.range[0]);
    return { line: pos.line, column: pos.col };
  };
  return { value: doc.toJS(), locate };
}

function explainEditFailure(err: unknown, type: ResourceType, name: string): unknown {
  if (err instanceof ApiError && err.status === 409) {
    return new ApiError(
      err.reason,
      `${type.qualifiedPlural} "${name}" was changed by someone else while you edited it; ` +
        'nothing was saved (run edit again to start from the current version)',
      err.status,
      err.causes,
    );
  }
  return err;
}
