/**
 * ipvsadm's `host[:port]` arguments and the name look-ups behind them: parsing (`parse_service`,
 * `parse_netmask`, `string_to_number`) and the `address:port` text of listings
 * (`addrport_to_anyname`), with the glibc text forms of addresses (`inet_aton`, `inet_pton`,
 * `inet_ntop`) that ipvsadm inherits.
 *
 * Names are resolved from /etc/hosts and /etc/services only. ipvsadm goes through the C library
 * resolver (NSS), which may also ask DNS; tapvs deliberately does not, so a listing never blocks on
 * a name server. The files are read once, on first use.
 */
import { readFileSync } from 'node:fs';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, type AddressFamily } from '../control/model.js';

// ------------------------------------------------------------------------------------------------
// Numbers as ipvsadm reads them

/**
 * ipvsadm's `string_to_number`: `strtol(s, 10)` that must consume the whole string (leading blanks
 * and a sign are allowed), then a range check. Returns undefined where ipvsadm gets -1.
 */
export function stringToNumber(s: string, min: number, max: number): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)$/.exec(s);
  if (m === null) return undefined;
  const magnitude = Number(m[2]);
  const value = m[1] === '-' && magnitude !== 0 ? -magnitude : magnitude;
  return value >= min && value <= max ? value : undefined;
}

// ------------------------------------------------------------------------------------------------
// IPv4 text

/** glibc `inet_aton`: 1 to 4 parts, each decimal, octal (0…) or hex (0x…); trailing blank ends it. */
export function inetAton(text: string): number | undefined {
  const parts: number[] = [];
  let i = 0;
  let value = 0;
  for (;;) {
    if (!isDigit(text.charCodeAt(i))) return undefined;
    const parsed = parseCUnsigned(text, i);
    value = parsed.value;
    if (value > 0xffffffff) return undefined;
    i = parsed.end;
    if (text[i] === '.') {
      if (parts.length > 2 || value > 0xff) return undefined;
      parts.push(value);
      i += 1;
    } else {
      break;
    }
  }
  if (i < text.length && !isCSpace(text.charCodeAt(i))) return undefined;
  switch (parts.length) {
    case 0:
      return value >>> 0;
    case 1:
      if (value > 0xffffff) return undefined;
      return ((parts[0]! << 24) | value) >>> 0;
    case 2:
      if (value > 0xffff) return undefined;
      return ((parts[0]! << 24) | (parts[1]! << 16) | value) >>> 0;
    default:
      if (value > 0xff) return undefined;
      return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | value) >>> 0;
  }
}

/** `strtoul(text + start, &end, 0)` for a string known to start with a digit at `start`. */
function parseCUnsigned(text: string, start: number): { value: number; end: number } {
  let i = start;
  let radix = 10;
  if (text[i] === '0') {
    if ((text[i + 1] === 'x' || text[i + 1] === 'X') && isHexDigit(text.charCodeAt(i + 2))) {
      radix = 16;
      i += 2;
    } else {
      radix = 8;
    }
  }
  let value = 0;
  for (;;) {
    const digit = digitValue(text.charCodeAt(i));
    if (digit < 0 || digit >= radix) break;
    value = value * radix + digit;
    i += 1;
  }
  return { value, end: i };
}

/** glibc `inet_pton(AF_INET)`: exactly four decimal octets, no leading zeros. */
export function inetPton4(text: string): number | undefined {
  const octets = parsePton4(text);
  if (octets === undefined) return undefined;
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

function parsePton4(text: string): number[] | undefined {
  const octets: number[] = [0];
  let sawDigit = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (isDigit(ch)) {
      const current = octets[octets.length - 1]!;
      if (sawDigit && current === 0) return undefined;
      const next = current * 10 + (ch - 48);
      if (next > 255) return undefined;
      octets[octets.length - 1] = next;
      sawDigit = true;
    } else if (text[i] === '.' && sawDigit) {
      if (octets.length === 4) return undefined;
      octets.push(0);
      sawDigit = false;
    } else {
      return undefined;
    }
  }
  return octets.length === 4 && sawDigit ? octets : undefined;
}

/** Dotted quad of a host-order u32 (`inet_ntoa`). */
export function formatIPv4(value: number): string {
  return `${(value >>> 24) & 0xff}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

// ------------------------------------------------------------------------------------------------
// IPv6 text

/** glibc `inet_pton(AF_INET6)`: the 16 address bytes, or undefined. */
export function inetPton6(text: string): Uint8Array | undefined {
  const tmp = new Uint8Array(16);
  let tp = 0;
  let colonp = -1;
  let src = 0;
  const end = text.length;
  if (src === end) return undefined;
  if (text[src] === ':') {
    src += 1;
    if (src === end || text[src] !== ':') return undefined;
  }
  let curtok = src;
  let xdigitsSeen = 0;
  let val = 0;
  while (src < end) {
    const ch = text[src]!;
    src += 1;
    const digit = isHexDigit(ch.charCodeAt(0)) ? digitValue(ch.charCodeAt(0)) : -1;
    if (digit >= 0) {
      if (xdigitsSeen === 4) return undefined;
      val = (val << 4) | digit;
      xdigitsSeen += 1;
      continue;
    }
    if (ch === ':') {
      curtok = src;
      if (xdigitsSeen === 0) {
        if (colonp >= 0) return undefined;
        colonp = tp;
        continue;
      } else if (src === end) {
        return undefined;
      }
      if (tp + 2 > 16) return undefined;
      tmp[tp++] = (val >> 8) & 0xff;
      tmp[tp++] = val & 0xff;
      xdigitsSeen = 0;
      val = 0;
      continue;
    }
    if (ch === '.' && tp + 4 <= 16) {
      const octets = parsePton4(text.slice(curtok));
      if (octets !== undefined) {
        for (const o of octets) tmp[tp++] = o;
        xdigitsSeen = 0;
        break;
      }
    }
    return undefined;
  }
  if (xdigitsSeen > 0) {
    if (tp + 2 > 16) return undefined;
    tmp[tp++] = (val >> 8) & 0xff;
    tmp[tp++] = val & 0xff;
  }
  if (colonp >= 0) {
    if (tp === 16) return undefined;
    const n = tp - colonp;
    tmp.copyWithin(16 - n, colonp, tp);
    tmp.fill(0, colonp, 16 - n);
    tp = 16;
  }
  return tp === 16 ? tmp : undefined;
}

/** glibc `inet_ntop(AF_INET6)`: longest zero run (≥ 2 words) as `::`, IPv4-mapped/compatible forms. */
export function formatIPv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (words[i] === 0) {
      if (curBase === -1) {
        curBase = i;
        curLen = 1;
      } else {
        curLen += 1;
      }
    } else if (curBase !== -1) {
      if (bestBase === -1 || curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase !== -1 && (bestBase === -1 || curLen > bestLen)) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestBase !== -1 && bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      out += `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
      break;
    }
    out += words[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

// ------------------------------------------------------------------------------------------------
// Canonical address text and the u32 words ipvsadm's sort compares

/** Canonical text (as the model stores it) of an address already in some valid text form. */
export function canonicalAddress(af: AddressFamily, addr: string): string {
  if (af === 6) {
    const bytes = inetPton6(addr);
    return bytes === undefined ? addr : formatIPv6(bytes);
  }
  const value = inetAton(addr);
  return value === undefined ? addr : formatIPv4(value);
}

/** The address as host-order u32 words (1 for IPv4, 4 for IPv6), as `ntohl()` sees them. */
export function addressWords(af: AddressFamily, addr: string): number[] {
  if (af === 6) {
    const bytes = inetPton6(addr) ?? new Uint8Array(16);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      words.push(((bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!) >>> 0);
    }
    return words;
  }
  return [inetAton(addr) ?? 0];
}

// ------------------------------------------------------------------------------------------------
// Name databases: /etc/hosts and /etc/services

export interface NameDatabase {
  /** `gethostbyname()` for IPv4: the first IPv4 entry naming `name` (case-insensitive). */
  hostToIPv4(name: string): number | undefined;
  /** `gethostbyaddr()`: the canonical name of the first entry with this address. */
  addressToHost(af: AddressFamily, addr: string): string | undefined;
  /** `getservbyname(name, proto)`. */
  serviceToPort(name: string, protocol: number): number | undefined;
  /** `getservbyport(port, proto)`: the official name of the first matching entry. */
  portToService(port: number, protocol: number): string | undefined;
}

interface HostEntry {
  af: AddressFamily;
  key: string; // canonical address text
  names: string[]; // canonical name first, then aliases
}

interface ServiceEntry {
  names: string[]; // official name first, then aliases
  port: number;
  protocol: string;
}

function protocolName(protocol: number): string | undefined {
  switch (protocol) {
    case IPPROTO_TCP:
      return 'tcp';
    case IPPROTO_UDP:
      return 'udp';
    case IPPROTO_SCTP:
      return 'sctp';
    default:
      return undefined;
  }
}

function uncommentedFields(line: string): string[] {
  const hash = line.indexOf('#');
  const body = hash >= 0 ? line.slice(0, hash) : line;
  return body.split(/[ \t\r]+/).filter((f) => f !== '');
}

function parseHosts(text: string): HostEntry[] {
  const entries: HostEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = uncommentedFields(line);
    if (fields.length < 2) continue;
    const address = fields[0]!;
    const v4 = inetPton4(address);
    if (v4 !== undefined) {
      entries.push({ af: 4, key: formatIPv4(v4), names: fields.slice(1) });
      continue;
    }
    const v6 = inetPton6(address);
    if (v6 !== undefined) entries.push({ af: 6, key: formatIPv6(v6), names: fields.slice(1) });
  }
  return entries;
}

function parseServices(text: string): ServiceEntry[] {
  const entries: ServiceEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = uncommentedFields(line);
    if (fields.length < 2) continue;
    const m = /^([0-9]+)\/(\S+)$/.exec(fields[1]!);
    if (m === null) continue;
    const port = Number(m[1]);
    if (port > 65535) continue;
    entries.push({ names: [fields[0]!, ...fields.slice(2)], port, protocol: m[2]! });
  }
  return entries;
}

/** A NameDatabase over the text of a hosts file and a services file. */
export class FileNameDatabase implements NameDatabase {
  private hosts: HostEntry[] | undefined;
  private services: ServiceEntry[] | undefined;

  /** The sources are read lazily, once: file contents, or functions returning them. */
  constructor(
    private readonly hostsSource: () => string,
    private readonly servicesSource: () => string,
  ) {}

  static fromText(hostsText: string, servicesText: string): FileNameDatabase {
    return new FileNameDatabase(
      () => hostsText,
      () => servicesText,
    );
  }

  static fromFiles(hostsPath = '/etc/hosts', servicesPath = '/etc/services'): FileNameDatabase {
    return new FileNameDatabase(
      () => readTextOrEmpty(hostsPath),
      () => readTextOrEmpty(servicesPath),
    );
  }

  private hostEntries(): HostEntry[] {
    this.hosts ??= parseHosts(this.hostsSource());
    return this.hosts;
  }

  private serviceEntries(): ServiceEntry[] {
    this.services ??= parseServices(this.servicesSource());
    return this.services;
  }

  hostToIPv4(name: string): number | undefined {
    const wanted = name.toLowerCase();
    for (const e of this.hostEntries()) {
      if (e.af === 4 && e.names.some((n) => n.toLowerCase() === wanted)) return inetPton4(e.key);
    }
    return undefined;
  }

  addressToHost(af: AddressFamily, addr: string): string | undefined {
    const key = canonicalAddress(af, addr);
    for (const e of this.hostEntries()) {
      if (e.af === af && e.key === key) return e.names[0];
    }
    return undefined;
  }

  serviceToPort(name: string, protocol: number): number | undefined {
    const proto = protocolName(protocol);
    if (proto === undefined) return undefined;
    for (const e of this.serviceEntries()) {
      if (e.protocol === proto && e.names.includes(name)) return e.port;
    }
    return undefined;
  }

  portToService(port: number, protocol: number): string | undefined {
    const proto = protocolName(protocol);
    if (proto === undefined) return undefined;
    for (const e of this.serviceEntries()) {
      if (e.protocol === proto && e.port === port) return e.names[0];
    }
    return undefined;
  }
}

function readTextOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The host's /etc/hosts and /etc/services, read on first use. */
export const systemNames: NameDatabase = FileNameDatabase.fromFiles();

// ------------------------------------------------------------------------------------------------
// host[:port] arguments (ipvsadm parse_service)

export const SERVICE_ADDR = 0x1;
export const SERVICE_PORT = 0x2;

export interface HostPort {
  af: AddressFamily;
  addr: string; // canonical text
  /** Present when the argument named a port (SERVICE_PORT). */
  port?: number;
}

/**
 * ipvsadm's `parse_service`: `host`, `host:port`, `v6addr`, `[v6addr]:port`. Host is an IPv6
 * literal, an `inet_aton` IPv4 form or an /etc/hosts name (IPv4 only); port a number 0..65535 or a
 * /etc/services name for `protocol`. An all-digit argument (and the empty one) is refused.
 * Returns undefined where ipvsadm's result lacks SERVICE_ADDR.
 */
export function parseHostPort(text: string, protocol: number, names: NameDatabase): HostPort | undefined {
  if (/^[0-9]*$/.test(text)) return undefined;
  let buf = text;
  let portText: string | undefined;
  if (buf.startsWith('[')) {
    buf = buf.slice(1);
    const close = buf.indexOf(']');
    if (close < 0) return undefined;
    if (buf[close + 1] !== ':') return undefined;
    portText = buf.slice(close + 2);
    buf = buf.slice(0, close);
  }
  let result: HostPort;
  const v6 = inetPton6(buf);
  if (v6 !== undefined) {
    result = { af: 6, addr: formatIPv6(v6) };
  } else {
    // ipvsadm looks for the port separator again in what is left, so "[1.2.3.4]:80" has no port.
    const colon = buf.lastIndexOf(':');
    portText = colon >= 0 ? buf.slice(colon + 1) : undefined;
    const host = colon >= 0 ? buf.slice(0, colon) : buf;
    const v4 = inetAton(host) ?? names.hostToIPv4(host);
    if (v4 === undefined) return undefined;
    result = { af: 4, addr: formatIPv4(v4) };
  }
  if (portText !== undefined) {
    const port = stringToNumber(portText, 0, 65535) ?? names.serviceToPort(portText, protocol);
    if (port === undefined) return undefined;
    result.port = port;
  }
  return result;
}

/** ipvsadm's `parse_netmask` (IPv4): an `inet_aton` form or a hosts name, as a dotted quad. */
export function parseNetmask(text: string, names: NameDatabase): string | undefined {
  const value = inetAton(text) ?? names.hostToIPv4(text);
  return value === undefined ? undefined : formatIPv4(value);
}

// ------------------------------------------------------------------------------------------------
// address:port text of listings (ipvsadm addrport_to_anyname)

/** ipvsadm formats into a 60-byte buffer. */
const ADDRPORT_MAX = 59;

/**
 * `a.b.c.d:port` or `[v6]:port`; without `numeric` the address becomes its /etc/hosts name and the
 * port its /etc/services name for `protocol` (numbers when there is none).
 */
export function formatAddressPort(
  af: AddressFamily,
  addr: string,
  port: number,
  protocol: number,
  numeric: boolean,
  names: NameDatabase,
): string {
  const address = canonicalAddress(af, addr);
  const host = numeric ? address : (names.addressToHost(af, address) ?? address);
  const service = numeric ? String(port) : (names.portToService(port, protocol) ?? String(port));
  const text = af === 4 ? `${host}:${service}` : `[${host}]:${service}`;
  return text.slice(0, ADDRPORT_MAX);
}

// ------------------------------------------------------------------------------------------------
// character classes of the C locale

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isHexDigit(code: number): boolean {
  return isDigit(code) || (code >= 65 && code <= 70) || (code >= 97 && code <= 102);
}

function isCSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13);
}

function digitValue(code: number): number {
  if (isDigit(code)) return code - 48;
  if (code >= 65 && code <= 70) return code - 55;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}
