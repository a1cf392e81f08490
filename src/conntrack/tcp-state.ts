/**
 * TCP (and UDP) connection state for IPVS connection entries, copied from the kernel
 * (net/netfilter/ipvs/ip_vs_proto_tcp.c, ip_vs_proto_udp.c).
 *
 * The transition tables are one flat Uint8Array indexed [direction][event][state]
 * (see transitionIndex); treat the exported tables as read-only.
 */

// ---- States (numeric values as in the kernel; they travel on the wire in sync messages) ----
export const TCP_S_NONE = 0;
export const TCP_S_ESTABLISHED = 1;
export const TCP_S_SYN_SENT = 2;
export const TCP_S_SYN_RECV = 3;
export const TCP_S_FIN_WAIT = 4;
export const TCP_S_TIME_WAIT = 5;
export const TCP_S_CLOSE = 6;
export const TCP_S_CLOSE_WAIT = 7;
export const TCP_S_LAST_ACK = 8;
export const TCP_S_LISTEN = 9;
export const TCP_S_SYNACK = 10;
/** Number of TCP states (kernel IP_VS_TCP_S_LAST). */
export const TCP_STATE_COUNT = 11;

/** State names as /proc/net/ip_vs_conn and ipvsadm -lc print them. */
export const TCP_STATE_NAMES: readonly string[] = [
  'NONE',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'SYNACK',
];

/** Kernel tcp_state_name(): "ERR!" for an out-of-range state. */
export function tcpStateName(state: number): string {
  return state >= 0 && state < TCP_STATE_COUNT ? TCP_STATE_NAMES[state] : 'ERR!';
}

// ---- Directions (kernel IP_VS_DIR_*) ----
/** Client -> director. */
export const DIR_INPUT = 0;
/** Real server -> client, seen by the director (NAT only). */
export const DIR_OUTPUT = 1;
/** Used instead of DIR_INPUT while the connection has NOOUTPUT (DR/TUN: the director sees no replies). */
export const DIR_INPUT_ONLY = 2;
export const DIR_COUNT = 3;

// ---- Events (kernel tcp_state_idx) ----
export const TCP_EVENT_SYN = 0;
export const TCP_EVENT_FIN = 1;
export const TCP_EVENT_ACK = 2;
export const TCP_EVENT_RST = 3;
/** No SYN/FIN/ACK/RST: the kernel skips the table and the new state is CLOSE. */
export const TCP_EVENT_NONE = -1;
export const TCP_EVENT_COUNT = 4;

// ---- TCP header flag bits (byte 13 of the header) ----
export const TCP_FLAG_FIN = 0x01;
export const TCP_FLAG_SYN = 0x02;
export const TCP_FLAG_RST = 0x04;
export const TCP_FLAG_PSH = 0x08;
export const TCP_FLAG_ACK = 0x10;

/** Offset of a cell in a transition table. */
export function transitionIndex(dir: number, event: number, state: number): number {
  return (dir * TCP_EVENT_COUNT + event) * TCP_STATE_COUNT + state;
}

const sES = TCP_S_ESTABLISHED;
const sSS = TCP_S_SYN_SENT;
const sSR = TCP_S_SYN_RECV;
const sFW = TCP_S_FIN_WAIT;
const sTW = TCP_S_TIME_WAIT;
const sCL = TCP_S_CLOSE;
const sCW = TCP_S_CLOSE_WAIT;
const sLA = TCP_S_LAST_ACK;
const sLI = TCP_S_LISTEN;
const sSA = TCP_S_SYNACK;

/** Kernel tcp_states[]: rows syn, fin, ack, rst for INPUT, OUTPUT, INPUT_ONLY. */
export const TCP_TRANSITIONS: Uint8Array = Uint8Array.from([
  /*      INPUT                                                                */
  /*        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA             */
  /*syn*/ sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR,
  /*fin*/ sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW,
  /*ack*/ sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  /*rst*/ sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR,
  /*      OUTPUT                                                               */
  /*syn*/ sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR,
  /*fin*/ sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW,
  /*ack*/ sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES,
  /*rst*/ sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL,
  /*      INPUT_ONLY                                                           */
  /*syn*/ sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR,
  /*fin*/ sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW,
  /*ack*/ sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  /*rst*/ sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL,
]);

/** Kernel tcp_states_dos[]: used while the secure_tcp defense is on (tcp_timeout_change). */
export const TCP_TRANSITIONS_SECURE: Uint8Array = Uint8Array.from([
  /*      INPUT                                                                */
  /*        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA             */
  /*syn*/ sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA,
  /*fin*/ sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA,
  /*ack*/ sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA,
  /*rst*/ sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL,
  /*      OUTPUT                                                               */
  /*syn*/ sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA,
  /*fin*/ sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW,
  /*ack*/ sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES,
  /*rst*/ sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL,
  /*      INPUT_ONLY                                                           */
  /*syn*/ sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA,
  /*fin*/ sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW,
  /*ack*/ sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  /*rst*/ sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL,
]);

/** Kernel tcp_state_idx(): RST > SYN > FIN > ACK; TCP_EVENT_NONE when none is set. */
export function tcpEvent(flags: number): number {
  if ((flags & TCP_FLAG_RST) !== 0) return TCP_EVENT_RST;
  if ((flags & TCP_FLAG_SYN) !== 0) return TCP_EVENT_SYN;
  if ((flags & TCP_FLAG_FIN) !== 0) return TCP_EVENT_FIN;
  if ((flags & TCP_FLAG_ACK) !== 0) return TCP_EVENT_ACK;
  return TCP_EVENT_NONE;
}

/**
 * Kernel set_tcp_state() minus the bookkeeping: the state after a packet with `flags` in direction
 * `dir`. The caller picks DIR_INPUT_ONLY instead of DIR_INPUT while the connection has NOOUTPUT (and
 * clears NOOUTPUT on the first DIR_OUTPUT packet), and passes TCP_TRANSITIONS_SECURE while the
 * secure_tcp defense is on.
 */
export function nextTcpState(dir: number, flags: number, cur: number, table: Uint8Array = TCP_TRANSITIONS): number {
  const event = tcpEvent(flags);
  if (event === TCP_EVENT_NONE) return TCP_S_CLOSE;
  return table[transitionIndex(dir, event, cur)];
}

/** Kernel tcp_state_active(): states counted in activeconns. */
export function isActiveTcpState(state: number): boolean {
  return (
    state === TCP_S_ESTABLISHED || state === TCP_S_SYN_SENT || state === TCP_S_SYN_RECV || state === TCP_S_SYNACK
  );
}

/** Kernel tcp_timeouts[], in seconds, indexed by state. */
export const TCP_DEFAULT_TIMEOUTS: Uint32Array = Uint32Array.from([
  2, // NONE
  15 * 60, // ESTABLISHED
  2 * 60, // SYN_SENT
  1 * 60, // SYN_RECV
  2 * 60, // FIN_WAIT
  2 * 60, // TIME_WAIT
  10, // CLOSE
  60, // CLOSE_WAIT
  30, // LAST_ACK
  2 * 60, // LISTEN
  120, // SYNACK
]);

// ---- UDP (ip_vs_proto_udp.c): a single state ----
export const UDP_S_NORMAL = 0;
export const UDP_STATE_NAME = 'UDP';
/** Kernel udp_timeouts[IP_VS_UDP_S_NORMAL] = 5 * 60 s. */
export const UDP_DEFAULT_TIMEOUT = 300;
