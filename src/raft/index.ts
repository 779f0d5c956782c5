/**
 * Flotilla's Raft: a pure consensus core, its storage, and the deterministic
 * simulator that tests it. See README.md in this folder for the flow.
 */
export * from './types';
export { RaftNode } from './raft-node';
export type { RaftOptions, RaftStatus, RestoredState, UnsafeBreaks } from './raft-node';
export { applyChange, decodeConfig, encodeConfig, quorumSize } from './config';
export { createPrng } from './prng';
export {
  MemoryStorage,
  bootstrapStorage,
  persistBatch,
  restoreState,
  type PersistBatch,
  type RaftStorage,
} from './storage';
export { SqliteStorage } from './sqlite-storage';
