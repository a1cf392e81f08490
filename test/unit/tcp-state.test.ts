/**
 * TCP state machine and protocol timeouts against the reference tables (ipvs.md §4.4-§4.6),
 * transcribed here independently of src/conntrack/tcp-state.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  DIR_INPUT,
  DIR_INPUT_ONLY,
  DIR_OUTPUT,
  TCP_DEFAULT_TIMEOUTS,
  TCP_EVENT_ACK,
  TCP_EVENT_COUNT,
  TCP_EVENT_FIN,
  TCP_EVENT_NONE,
  TCP_EVENT_RST,
  TCP_EVENT_SYN,
  TCP_FLAG_ACK,
  TCP_FLAG_FIN,
  TCP_FLAG_PSH,
  TCP_FLAG_RST,
  TCP_FLAG_SYN,
  TCP_STATE_COUNT,
  TCP_STATE_NAMES,
  TCP_S_CLOSE,
  TCP_S_NONE,
  TCP_TRANSITIONS,
  TCP_TRANSITIONS_SECURE,
  UDP_DEFAULT_TIMEOUT,
  UDP_STATE_NAME,
  UDP_S_NORMAL,
  isActiveTcpState,
  nextTcpState,
  tcpEvent,
  tcpStateName,
  transitionIndex,
} from '../../src/conntrack/tcp-state.js';
import { ProtocolTimeouts, TIMEOUT_MAX_SECONDS } from '../../src/conntrack/timeouts.js';

/** Column order of the reference tables and the kernel's numeric state values. */
const ABBR = ['NO', 'ES', 'SS', 'SR', 'FW', 'TW', 'CL', 'CW', 'LA', 'LI', 'SA'];
const S = Object.fromEntries(ABBR.map((a, i) => [a, i])) as Record<string, number>;
const EVENTS = ['syn', 'fin', 'ack', 'rst'] as const;
type Table = Record<(typeof EVENTS)[number], string>;

// Reference §4.4, row = event, column = current state NO ES SS SR FW TW CL CW LA LI SA.
const INPUT: Table = {
  syn: 'SR ES ES SR SR SR SR SR SR SR SR',
  fin: 'CL CW SS TW TW TW CL CW LA LI TW',
  ack: 'ES ES SS ES FW TW CL CW CL LI ES',
  rst: 'CL CL CL SR CL CL CL CL LA LI SR',
};
const OUTPUT: Table = {
  syn: 'SS ES SS SR SS SS SS SS SS LI SR',
  fin: 'TW FW SS TW FW TW CL TW LA LI TW',
  ack: 'ES ES SS ES FW TW CL CW LA ES ES',
  rst: 'CL CL SS CL CL TW CL CL CL CL CL',
};
const INPUT_ONLY: Table = {
  syn: 'SR ES ES SR SR SR SR SR SR SR SR',
  fin: 'CL FW SS TW FW TW CL CW LA LI TW',
  ack: 'ES ES SS ES FW TW CL CW CL LI ES',
  rst: 'CL CL CL SR CL CL CL CL LA LI CL',
};

/** The reference's list of secure_tcp differences: [dir, event, current state, new state]. */
const SECURE_DIFFERENCES: [number, string, string, string][] = [
  [DIR_INPUT, 'syn', 'SA', 'SA'],
  [DIR_INPUT, 'fin', 'SA', 'SA'],
  [DIR_INPUT, 'ack', 'SA', 'SA'],
  [DIR_INPUT, 'ack', 'SR', 'SR'],
  [DIR_INPUT, 'rst', 'SA', 'CL'],
  [DIR_OUTPUT, 'syn', 'SR', 'SA'],
  [DIR_OUTPUT, 'syn', 'SA', 'SA'],
  ...['NO', 'FW', 'TW', 'CL', 'CW', 'LA', 'LI', 'SA'].map(
    (cur): [number, string, string, string] => [DIR_INPUT_ONLY, 'syn', cur, 'SA'],
  ),
];

function readable(table: Uint8Array, dir: number, event: number): string {
  const cells: string[] = [];
  for (let s = 0; s < TCP_STATE_COUNT; s++) cells.push(ABBR[table[transitionIndex(dir, event, s)]]);
  return cells.join(' ');
}

const FLAGS: Record<string, number> = {
  S: TCP_FLAG_SYN,
  SA: TCP_FLAG_SYN | TCP_FLAG_ACK,
  A: TCP_FLAG_ACK,
  PA: TCP_FLAG_PSH | TCP_FLAG_ACK,
  FA: TCP_FLAG_FIN | TCP_FLAG_ACK,
  F: TCP_FLAG_FIN,
  R: TCP_FLAG_RST,
  RA: TCP_FLAG_RST | TCP_FLAG_ACK,
};

/** Feed [direction, flags] packets from NONE and return "STATE/timeout" after each. */
function lifecycle(packets: [number, string][], table: Uint8Array = TCP_TRANSITIONS): string[] {
  let state = TCP_S_NONE;
  return packets.map(([dir, flags]) => {
    state = nextTcpState(dir, FLAGS[flags], state, table);
    return `${ABBR[state]}/${TCP_DEFAULT_TIMEOUTS[state]}`;
  });
}

describe('TCP states', () => {
  it('has the kernel numbering and names', () => {
    expect(TCP_STATE_COUNT).toBe(11);
    expect(TCP_STATE_NAMES).toEqual([
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
    ]);
    expect(tcpStateName(S.SA)).toBe('SYNACK');
    expect(tcpStateName(11)).toBe('ERR!');
    expect([DIR_INPUT, DIR_OUTPUT, DIR_INPUT_ONLY]).toEqual([0, 1, 2]);
  });

  it('active states are ES, SS, SR, SA', () => {
    const active = ABBR.filter((_, s) => isActiveTcpState(s));
    expect(active).toEqual(['ES', 'SS', 'SR', 'SA']);
  });

  it('default timeouts (seconds)', () => {
    expect([...TCP_DEFAULT_TIMEOUTS]).toEqual([2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120]);
  });

  it('UDP: one state named UDP, 300 s', () => {
    expect(UDP_S_NORMAL).toBe(0);
    expect(UDP_STATE_NAME).toBe('UDP');
    expect(UDP_DEFAULT_TIMEOUT).toBe(300);
  });
});

describe('TCP transition tables', () => {
  it('flat layout [dir][event][state]', () => {
    expect(TCP_TRANSITIONS.length).toBe(3 * TCP_EVENT_COUNT * TCP_STATE_COUNT);
    expect(TCP_TRANSITIONS_SECURE.length).toBe(3 * TCP_EVENT_COUNT * TCP_STATE_COUNT);
    expect(transitionIndex(DIR_OUTPUT, TCP_EVENT_FIN, S.SR)).toBe((1 * 4 + 1) * 11 + 3);
  });

  const tables: [string, number, Table][] = [
    ['INPUT', DIR_INPUT, INPUT],
    ['OUTPUT', DIR_OUTPUT, OUTPUT],
    ['INPUT_ONLY', DIR_INPUT_ONLY, INPUT_ONLY],
  ];
  for (const [label, dir, table] of tables) {
    it(`${label} matches the reference in every cell`, () => {
      EVENTS.forEach((event, e) => {
        expect(readable(TCP_TRANSITIONS, dir, e), `${label} ${event}`).toBe(table[event]);
      });
    });
  }

  it('secure_tcp table = normal table + exactly the listed differences', () => {
    let differing = 0;
    for (const [, dir, table] of tables) {
      EVENTS.forEach((event, e) => {
        const cells = table[event].split(' ');
        for (let s = 0; s < TCP_STATE_COUNT; s++) {
          const diff = SECURE_DIFFERENCES.find((d) => d[0] === dir && d[1] === event && d[2] === ABBR[s]);
          const want = diff ? diff[3] : cells[s];
          const got = ABBR[TCP_TRANSITIONS_SECURE[transitionIndex(dir, e, s)]];
          expect(got, `secure ${dir} ${event} ${ABBR[s]}`).toBe(want);
          if (got !== cells[s]) differing++;
        }
      });
    }
    // every listed difference really changes its cell, and no other cell differs
    expect(differing).toBe(SECURE_DIFFERENCES.length);
  });
});

describe('tcpEvent priority RST > SYN > FIN > ACK', () => {
  it('maps flag combinations', () => {
    expect([TCP_EVENT_SYN, TCP_EVENT_FIN, TCP_EVENT_ACK, TCP_EVENT_RST]).toEqual([0, 1, 2, 3]);
    expect(tcpEvent(TCP_FLAG_RST | TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_ACK)).toBe(TCP_EVENT_RST);
    expect(tcpEvent(TCP_FLAG_RST | TCP_FLAG_ACK)).toBe(TCP_EVENT_RST);
    expect(tcpEvent(TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_ACK)).toBe(TCP_EVENT_SYN);
    expect(tcpEvent(TCP_FLAG_SYN | TCP_FLAG_ACK)).toBe(TCP_EVENT_SYN);
    expect(tcpEvent(TCP_FLAG_FIN | TCP_FLAG_ACK)).toBe(TCP_EVENT_FIN);
    expect(tcpEvent(TCP_FLAG_PSH | TCP_FLAG_ACK)).toBe(TCP_EVENT_ACK);
    expect(tcpEvent(TCP_FLAG_PSH)).toBe(TCP_EVENT_NONE);
    expect(tcpEvent(0)).toBe(TCP_EVENT_NONE);
  });

  it('a packet without SYN/FIN/ACK/RST moves any state to CLOSE', () => {
    for (const dir of [DIR_INPUT, DIR_OUTPUT, DIR_INPUT_ONLY])
      for (let s = 0; s < TCP_STATE_COUNT; s++) {
        expect(nextTcpState(dir, 0, s)).toBe(TCP_S_CLOSE);
        expect(nextTcpState(dir, TCP_FLAG_PSH, s)).toBe(TCP_S_CLOSE);
      }
  });

  it('SYN+ACK uses the syn row; RST+ACK the rst row', () => {
    expect(nextTcpState(DIR_OUTPUT, FLAGS.SA, S.SR)).toBe(S.SR);
    expect(nextTcpState(DIR_INPUT, FLAGS.RA, S.ES)).toBe(S.CL);
    expect(nextTcpState(DIR_INPUT, FLAGS.RA, S.LA)).toBe(S.LA);
  });
});

describe('TCP lifecycles', () => {
  it('NAT, client closes first', () => {
    expect(
      lifecycle([
        [DIR_INPUT, 'S'],
        [DIR_OUTPUT, 'SA'],
        [DIR_INPUT, 'A'],
        [DIR_INPUT, 'PA'],
        [DIR_OUTPUT, 'PA'],
        [DIR_INPUT, 'FA'],
        [DIR_OUTPUT, 'A'],
        [DIR_OUTPUT, 'FA'],
        [DIR_INPUT, 'A'],
      ]),
    ).toEqual(['SR/60', 'SR/60', 'ES/900', 'ES/900', 'ES/900', 'CW/60', 'CW/60', 'TW/120', 'TW/120']);
  });

  it('NAT, server closes first', () => {
    expect(
      lifecycle([
        [DIR_INPUT, 'S'],
        [DIR_OUTPUT, 'SA'],
        [DIR_INPUT, 'A'],
        [DIR_OUTPUT, 'FA'],
        [DIR_INPUT, 'A'],
        [DIR_INPUT, 'FA'],
        [DIR_OUTPUT, 'A'],
      ]),
    ).toEqual(['SR/60', 'SR/60', 'ES/900', 'FW/120', 'FW/120', 'TW/120', 'TW/120']);
  });

  it('NAT, client resets', () => {
    expect(
      lifecycle([
        [DIR_INPUT, 'S'],
        [DIR_OUTPUT, 'SA'],
        [DIR_INPUT, 'A'],
        [DIR_INPUT, 'RA'],
      ]),
    ).toEqual(['SR/60', 'SR/60', 'ES/900', 'CL/10']);
  });

  it('DR/TUN via INPUT_ONLY: FIN goes to FIN_WAIT and stays there on ACKs', () => {
    expect(
      lifecycle([
        [DIR_INPUT_ONLY, 'S'],
        [DIR_INPUT_ONLY, 'A'],
        [DIR_INPUT_ONLY, 'PA'],
        [DIR_INPUT_ONLY, 'FA'],
        [DIR_INPUT_ONLY, 'A'],
        [DIR_INPUT_ONLY, 'R'],
      ]),
    ).toEqual(['SR/60', 'ES/900', 'ES/900', 'FW/120', 'FW/120', 'CL/10']);
  });

  it('INPUT and INPUT_ONLY differ for FIN in ESTABLISHED (CW vs FW)', () => {
    expect(nextTcpState(DIR_INPUT, FLAGS.FA, S.ES)).toBe(S.CW);
    expect(nextTcpState(DIR_INPUT_ONLY, FLAGS.FA, S.ES)).toBe(S.FW);
  });

  it('secure_tcp: a SYN flood stays in SYNACK under INPUT_ONLY', () => {
    expect(
      lifecycle(
        [
          [DIR_INPUT_ONLY, 'S'],
          [DIR_INPUT_ONLY, 'S'],
          [DIR_INPUT_ONLY, 'A'],
        ],
        TCP_TRANSITIONS_SECURE,
      ),
    ).toEqual(['SA/120', 'SA/120', 'ES/900']);
  });
});

describe('ProtocolTimeouts (ipvsadm --set)', () => {
  it('starts at the defaults', () => {
    const t = new ProtocolTimeouts();
    expect(t.get()).toEqual({ tcp: 900, tcpfin: 120, udp: 300 });
    expect([...t.tcp]).toEqual([...TCP_DEFAULT_TIMEOUTS]);
  });

  it('0 leaves a value unchanged; tcp -> ESTABLISHED, tcpfin -> FIN_WAIT, udp -> UDP', () => {
    const t = new ProtocolTimeouts();
    expect(t.set(0, 0, 0)).toBe(true);
    expect(t.get()).toEqual({ tcp: 900, tcpfin: 120, udp: 300 });
    expect(t.set(3600, 0, 0)).toBe(true);
    expect(t.get()).toEqual({ tcp: 3600, tcpfin: 120, udp: 300 });
    expect(t.set(0, 30, 0)).toBe(true);
    expect(t.set(0, 0, 45)).toBe(true);
    expect(t.get()).toEqual({ tcp: 3600, tcpfin: 30, udp: 45 });
    expect(t.tcp[S.ES]).toBe(3600);
    expect(t.tcp[S.FW]).toBe(30);
    expect(t.tcp[S.TW]).toBe(120); // nothing else changes
    expect(t.udp).toBe(45);
    expect(TCP_DEFAULT_TIMEOUTS[S.ES]).toBe(900); // the defaults are copied, not shared
    t.reset();
    expect(t.get()).toEqual({ tcp: 900, tcpfin: 120, udp: 300 });
  });

  it('rejects out-of-range values without changing anything', () => {
    const t = new ProtocolTimeouts();
    expect(t.set(100, -1, 0)).toBe(false);
    expect(t.set(100, 0, TIMEOUT_MAX_SECONDS + 1)).toBe(false);
    expect(t.set(1.5, 0, 0)).toBe(false);
    expect(t.get()).toEqual({ tcp: 900, tcpfin: 120, udp: 300 });
    expect(t.set(TIMEOUT_MAX_SECONDS, 0, 0)).toBe(true);
  });
});
