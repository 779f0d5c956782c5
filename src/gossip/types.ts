/**
 * The vocabulary of the gossip layer: members, the updates nodes spread
 * about them, and the messages of the SWIM protocol. Field names on the
 * wire are one letter long to keep datagrams small.
 */

/** What one node believes about another. */
export type MemberState = 'alive' | 'suspect' | 'dead';

/** A member as the rest of Flotilla sees it. */
export interface MemberInfo {
  name: string;
  /** "host:port" the member receives gossip on. */
  address: string;
  state: MemberState;
  /** Raised only by the member itself, to refute suspicion. */
  incarnation: number;
}

/** A change of a member's state, spread by piggybacking on messages. */
export interface Update {
  /** The member's name. */
  n: string;
  /** The member's address, "host:port". */
  a: string;
  /** Incarnation the claim is about. */
  i: number;
  s: MemberState;
  /** Who made a suspect or dead claim; confirmations count distinct ones. */
  f?: string;
}

/** Asks `target` to answer with an ack. */
export interface PingMessage {
  t: 'ping';
  seq: number;
  /** Sender's name. */
  from: string;
  /** Name of the node meant to answer; a node of another name ignores it. */
  target: string;
  u: Update[];
}

/** Asks the receiver to ping `target` on the sender's behalf. */
export interface PingReqMessage {
  t: 'pingReq';
  seq: number;
  from: string;
  target: string;
  targetAddress: string;
  u: Update[];
}

/** Answers a ping; relayed unchanged in seq for an indirect probe. */
export interface AckMessage {
  t: 'ack';
  seq: number;
  /** Name of the node that was probed. */
  from: string;
  u: Update[];
}

/**
 * Push-pull of full state: a joining node sends its view to a seed, and
 * nodes send it to a member they believe dead, so partitions heal. The
 * receiver merges it and answers with `sync` carrying its own view.
 */
export interface JoinMessage {
  t: 'join';
  from: string;
  u: Update[];
}

/** Answer to `join`: the receiver's full view. */
export interface SyncMessage {
  t: 'sync';
  from: string;
  u: Update[];
}

/** Every message of the protocol. */
export type GossipMessage = PingMessage | PingReqMessage | AckMessage | JoinMessage | SyncMessage;

/** A message to send to an address. */
export interface Outgoing {
  to: string;
  message: GossipMessage;
}

/** A member became alive, suspect or dead in this node's view. */
export interface MembershipEvent {
  type: MemberState;
  name: string;
  address: string;
  incarnation: number;
}

/** What a call into the core asks its shell to do. */
export interface Output {
  messages: Outgoing[];
  events: MembershipEvent[];
}
