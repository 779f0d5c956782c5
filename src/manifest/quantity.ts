/**
 * Kubernetes resource quantities ("500m", "1.5", "128Mi", "1G", "2e3"):
 * a non-negative decimal number and an optional binary, decimal or
 * exponent suffix.
 */

const QUANTITY = /^(\+?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

const MULTIPLIERS: Readonly<Record<string, number>> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/**
 * Parses a quantity into its value in base units (cores, bytes), or
 * returns undefined when it is not a valid non-negative quantity.
 */
export function parseQuantity(quantity: string): number | undefined {
  const match = QUANTITY.exec(quantity);
  if (!match) return undefined;
  const [, number, suffix = ''] = match;
  const isExponent = /^[eE][+-]?\d+$/.test(suffix);
  const multiplier = isExponent ? 10 ** Number(suffix.slice(1)) : MULTIPLIERS[suffix];
  const value = Number(number) * multiplier;
  return Number.isFinite(value) ? value : undefined;
}

/** Converts a CPU quantity into millicores, rounding up as Kubernetes does. */
export function parseCpuMillis(quantity: string): number | undefined {
  const cores = parseQuantity(quantity);
  // The epsilon keeps "0.1" (0.1 * 1000 = 100.00000000000001) at 100.
  return cores === undefined ? undefined : Math.max(0, Math.ceil(cores * 1000 - 1e-9));
}

/** Converts a memory quantity into bytes, rounding up. */
export function parseMemoryBytes(quantity: string): number | undefined {
  const bytes = parseQuantity(quantity);
  return bytes === undefined ? undefined : Math.max(0, Math.ceil(bytes - 1e-9));
}
