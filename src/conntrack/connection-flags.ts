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
