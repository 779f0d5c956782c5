/**
 * The name and label syntaxes of the Kubernetes API, each as a function that
 * returns undefined for a valid value or the "expected ..." phrase to put
 * into an error message.
 */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Checks a DNS-1123 label: container names and Service port names. */
export function checkDnsLabel(value: string): string | undefined {
  if (value.length <= 63 && DNS_LABEL.test(value)) return undefined;
  return (
    'expected a DNS-1123 label (at most 63 lowercase letters, digits and "-", ' +
    'starting and ending with a letter or digit)'
  );
}

/** Checks a DNS-1035 label: Service names, which must start with a letter. */
export function checkDns1035Label(value: string): string | undefined {
  if (value.length <= 63 && DNS_1035_LABEL.test(value)) return undefined;
  return (
    'expected a DNS-1035 label (at most 63 lowercase letters, digits and "-", ' +
    'starting with a letter and ending with a letter or digit)'
  );
}

/** Checks a DNS-1123 subdomain: Deployment names, label key prefixes. */
export function checkDnsSubdomain(value: string): string | undefined {
  if (value.length <= 253 && DNS_SUBDOMAIN.test(value)) return undefined;
  return (
    'expected a DNS-1123 subdomain (at most 253 lowercase letters, digits, "-" and ".", ' +
    'starting and ending with a letter or digit)'
  );
}

/** Checks a label or annotation key: an optional DNS subdomain prefix and "/", then a name. */
export function checkQualifiedName(value: string): string | undefined {
  const parts = value.split('/');
  const name = parts[parts.length - 1];
  const prefixProblem = parts.length === 2 ? checkDnsSubdomain(parts[0]) : undefined;
  if (parts.length <= 2 && !prefixProblem && name.length <= 63 && LABEL_NAME.test(name)) {
    return undefined;
  }
  return (
    'expected a key like "app" or "example.com/app": an optional DNS subdomain and "/", ' +
    'then at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit'
  );
}

/** Checks a label value: empty, or like the name part of a label key. */
export function checkLabelValue(value: string): string | undefined {
  if (value === '' || (value.length <= 63 && LABEL_NAME.test(value))) return undefined;
  return (
    'expected a label value: empty, or at most 63 letters, digits, "-", "_" and ".", ' +
    'starting and ending with a letter or digit'
  );
}

/** Checks an IANA service name: container port names and named target ports. */
export function checkPortName(value: string): string | undefined {
  const valid =
    value.length <= 15 &&
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(value) &&
    /[a-z]/.test(value) &&
    !value.includes('--');
  if (valid) return undefined;
  return (
    'expected a port name (at most 15 lowercase letters, digits and "-", ' +
    'with at least one letter, no "--", and not starting or ending with "-")'
  );
}

// Written from the distribution reference grammar: [host[:port]/]path[:tag][@digest].
const HOST_PART = '(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])';
const HOST = `(?:${HOST_PART}(?:\\.${HOST_PART})*|\\[[0-9A-Fa-f:]+\\])(?::[0-9]+)?`;
const PATH_PART = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}';
const IMAGE = new RegExp(
  `^(?:${HOST}/)?${PATH_PART}(?:/${PATH_PART})*(?::${TAG})?(?:@${DIGEST})?$`,
);

/** Checks a container image reference such as "nginx:1.27" or "registry:5000/team/app:v2". */
export function checkImageReference(value: string): string | undefined {
  if (value.length <= 4096 && IMAGE.test(value)) return undefined;
  return (
    'expected an image reference like "nginx:1.27" or "registry.example.com/team/app:v2" ' +
    '(repository names are lowercase)'
  );
}

/** Splits an image reference into its tag and digest, either of which may be absent. */
export function parseImageReference(image: string): { tag?: string; digest?: string } {
  const at = image.indexOf('@');
  const digest = at >= 0 ? image.slice(at + 1) : undefined;
  const name = at >= 0 ? image.slice(0, at) : image;
  // A colon before the last "/" belongs to a registry port, not a tag.
  const colon = name.lastIndexOf(':');
  const tag = colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
  return { tag, digest };
}

/** True for an integer percentage such as "25%". */
export function isPercent(value: string): boolean {
  return /^\d+%$/.test(value);
}
