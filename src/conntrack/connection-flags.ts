/** Connection flag bits (uapi IP_VS_CONN_F_*), as the kernel numbers them (sync sends the low 16 bits). */
export const CONN_F_FWD_MASK = 0x0007;
export const CONN_F_SYNC = 0x0020;
export const CONN_F_HASHED = 0x0040;
export const CONN_F_NOOUTPUT = 0x0080;
export const CONN_F_INACTIVE = 0x0100;
/** Sequence numbers of the client's direction are adjusted (kernel IP_VS_CONN_F_IN_SEQ; tapvs: PROXY header sent). */
export const CONN_F_IN_SEQ = 0x0400;
export const CONN_F_NO_CPORT = 0x0800;
export const CONN_F_TEMPLATE = 0x1000;
export const CONN_F_ONE_PACKET = 0x2000;
/**
 * tapvs: the entry is IPv6; its addresses are Ipv6AddressIds ids. Not a kernel flag (the kernel keeps the
 * family in cp->af); tapvs keeps it here so that it is part of every lookup's key compare.
 */
export const CONN_F_INET6 = 0x4000;
/**
 * The family tag OR-ed into a protocol number wherever a lookup key must tell IPv6 from IPv4 (connection
 * lookups and the service index): CONN_F_INET6 at its place in the connection table's META word.
 */
export const PROTO_INET6 = CONN_F_INET6 << 8;
