/**
 * Internet checksum (RFC 1071) and incremental updates (RFC 1624), on 16-bit words in network order.
 * All functions work on unfolded or folded 32-bit sums held in plain numbers; nothing allocates.
 */

/** Add the 16-bit big-endian words of buf[off, off+len) to `sum` (an odd last byte is padded with 0). */
export function sumWords(buf: Uint8Array, off: number, len: number, sum: number): number {
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (len & 1) sum += buf[i] << 8;
  // Fold occasionally cannot be skipped for long buffers: sums of 32k words stay below 2^31, fold at the end.
  return sum;
}

/** Fold a 32-bit (or larger, < 2^53) sum to 16 bits with end-around carry. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/** The checksum field value for the given data: one's complement of the folded sum. */
export function checksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~fold(sumWords(buf, off, len, initial)) & 0xffff;
}

/** Sum of the IPv4 pseudo-header (addresses as u32, protocol, L4 length). */
export function pseudoHeaderSum4(saddr: number, daddr: number, protocol: number, l4len: number): number {
  return (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + protocol + l4len;
}

/**
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field changing from `oldWord` to `newWord`.
 * Returns the new checksum field value.
 */
export function updateChecksum16(check: number, oldWord: number, newWord: number): number {
  let sum = (~check & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** RFC 1624 for a 32-bit field (an IPv4 address), as two 16-bit words. */
export function updateChecksum32(check: number, oldValue: number, newValue: number): number {
  let sum =
    (~check & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) +
    (newValue & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * A partial checksum field (CHECKSUM_PARTIAL: the not complemented pseudo-header sum, see offload.ts)
 * after a 32-bit pseudo-header field (an IPv4 address) changed: fold(field + ~old + new), not complemented,
 * as the kernel's inet_proto_csum_replace4 with pseudohdr for CHECKSUM_PARTIAL.
 */
export function updatePartialChecksum32(field: number, oldValue: number, newValue: number): number {
  let sum = (field & 0xffff) + (~(oldValue >>> 16) & 0xffff) + (~oldValue & 0xffff) + ((newValue >>> 16) & 0xffff) + (newValue & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum & 0xffff;
}
