/**
 * A small seeded generator of numbers in [0, 1): xorshift32 over a state
 * scrambled from the seed, so that neighbouring seeds diverge at once.
 */
export function createPrng(seed: number): () => number {
  let state = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  state = (state ^ (state >>> 13)) >>> 0 || 0x6d2b79f5;
  const next = (): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
  for (let i = 0; i < 8; i++) next();
  return next;
}

/** An integer in [lo, hi] drawn from `random`. */
export function randomInt(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}
