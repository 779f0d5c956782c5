/**
 * A minimal OpenAPI v3 description of the served paths. kubectl reads it for
 * one thing: whether PATCH of a kind takes the `fieldValidation` parameter.
 * When it does, kubectl leaves validation to the server (fieldValidation=
 * Strict) instead of validating on the client, which would need the full
 * schemas. The patch content types listed leave out strategic merge patch
 * on purpose: kubectl then computes strategic patches from its built-in
 * types rather than from schemas this document does not carry.
 */
import { contentHash } from '../model/canonical';
import { VERSION } from '../version';
import { RESOURCES, apiVersionOf, groupPrefix, type ResourceInfo } from './resources';

const GROUPS = ['', 'apps'];

/** The answer of `GET /openapi/v3`: where each group version's document is. */
export function openApiIndex(): unknown {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const group of GROUPS) {
    const key = groupPrefix(group).slice(1);
    const hash = contentHash(openApiDocument(group), 16);
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
  }
  return { paths };
}

/** The document of one group version, or undefined for an unknown one. */
export function openApiFor(path: string): unknown {
  const group = GROUPS.find((g) => `/openapi/v3${groupPrefix(g)}` === path);
  return group === undefined ? undefined : openApiDocument(group);
}

function openApiDocument(group: string): unknown {
  const paths: Record<string, unknown> = {};
  for (const r of RESOURCES.filter((x) => x.group === group)) {
    const item = `${collectionPath(r)}/{name}`;
    paths[item] = { get: operation(r, 'get'), ...(r.writable ? { patch: patchOperation(r) } : {}) };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Flotilla', version: VERSION },
    paths,
    components: { schemas: {} },
  };
}

function collectionPath(r: ResourceInfo): string {
  const ns = r.namespaced ? '/namespaces/{namespace}' : '';
  return `${groupPrefix(r.group)}${ns}/${r.name}`;
}

function operation(r: ResourceInfo, action: string) {
  const [group, version] = r.group ? [r.group, 'v1'] : ['', apiVersionOf(r)];
  return {
    operationId: `${action}${r.kind}`,
    responses: { '200': { description: 'OK' } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group, version, kind: r.kind },
  };
}

function patchOperation(r: ResourceInfo) {
  const query = (name: string) => ({ name, in: 'query', schema: { type: 'string' } });
  const body = { schema: { type: 'object' } };
  return {
    ...operation(r, 'patch'),
    parameters: [query('dryRun'), query('fieldManager'), query('fieldValidation')],
    requestBody: {
      content: {
        'application/json-patch+json': body,
        'application/merge-patch+json': body,
      },
    },
  };
}
