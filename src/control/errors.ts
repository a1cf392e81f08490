/**
 * The messages ipvsadm prints for a failed IPVS operation: libipvs's `ipvs_strerror()` table, which
 * is keyed by the operation (the libipvs function that failed) and the errno, with glibc's
 * `strerror()` text as the fallback.
 */
import type { Command, Errno } from './protocol.js';

/** The libipvs entry points whose failures ipvsadm reports, plus tapvs's own mark-rule and laddr commands. */
export type IpvsOperation =
  | 'add-service'
  | 'edit-service'
  | 'delete-service'
  | 'zero'
  | 'flush'
  | 'add-server'
  | 'edit-server'
  | 'delete-server'
  | 'set-timeouts'
  | 'add-mark'
  | 'delete-mark'
  | 'add-laddr'
  | 'delete-laddr'
  | 'get-laddrs'
  | 'start-daemon'
  | 'stop-daemon'
  | 'get-services'
  | 'get-dests'
  | 'get-service'
  | 'get-timeouts'
  | 'get-daemon'
  | 'get-connections';

interface StrerrorEntry {
  operation: IpvsOperation | undefined; // undefined = any operation
  errno: Errno | 'ENOPROTOOPT' | 'EMSGSIZE';
  message: string;
}

/** libipvs.c `ipvs_strerror()`, in its order (the first match wins), with tapvs's mark-rule and laddr entries. */
const IPVS_STRERROR_TABLE: readonly StrerrorEntry[] = [
  { operation: 'add-service', errno: 'EEXIST', message: 'Service already exists' },
  { operation: 'add-service', errno: 'ENOENT', message: 'Scheduler or persistence engine not found' },
  { operation: 'edit-service', errno: 'ESRCH', message: 'No such service' },
  { operation: 'edit-service', errno: 'ENOENT', message: 'Scheduler or persistence engine not found' },
  { operation: 'delete-service', errno: 'ESRCH', message: 'No such service' },
  { operation: 'zero', errno: 'ESRCH', message: 'No such service' },
  { operation: 'add-server', errno: 'ESRCH', message: 'Service not defined' },
  { operation: 'add-server', errno: 'EEXIST', message: 'Destination already exists' },
  { operation: 'edit-server', errno: 'ESRCH', message: 'Service not defined' },
  { operation: 'edit-server', errno: 'ENOENT', message: 'No such destination' },
  { operation: 'delete-server', errno: 'ESRCH', message: 'Service not defined' },
  { operation: 'delete-server', errno: 'ENOENT', message: 'No such destination' },
  { operation: 'start-daemon', errno: 'EEXIST', message: 'Daemon has already run' },
  // tapvs's mark rules (not in libipvs), worded like their service/destination counterparts
  { operation: 'add-mark', errno: 'EEXIST', message: 'Mark rule already exists' },
  { operation: 'delete-mark', errno: 'ENOENT', message: 'No such mark rule' },
  // tapvs's FULLNAT local addresses (DPVS's --add-laddr/--del-laddr), worded like the destination entries
  { operation: 'add-laddr', errno: 'ESRCH', message: 'Service not defined' },
  { operation: 'add-laddr', errno: 'EEXIST', message: 'Local address already exists' },
  { operation: 'delete-laddr', errno: 'ESRCH', message: 'Service not defined' },
  { operation: 'delete-laddr', errno: 'ENOENT', message: 'No such local address' },
  { operation: 'get-laddrs', errno: 'ESRCH', message: 'No such service' },
  { operation: 'stop-daemon', errno: 'ESRCH', message: 'No daemon is running' },
  { operation: 'get-services', errno: 'ESRCH', message: 'No such service' },
  { operation: 'get-dests', errno: 'ESRCH', message: 'No such service' },
  { operation: 'get-service', errno: 'ESRCH', message: 'No such service' },
  { operation: undefined, errno: 'EPERM', message: 'Permission denied (you must be root)' },
  {
    operation: undefined,
    errno: 'EINVAL',
    message: 'Invalid operation.  Possibly wrong module version, address not unicast, ...',
  },
  { operation: undefined, errno: 'ENOPROTOOPT', message: 'Protocol not available' },
  { operation: undefined, errno: 'ENOMEM', message: 'Memory allocation problem' },
  { operation: undefined, errno: 'EOPNOTSUPP', message: 'Operation not supported with IPv6' },
  { operation: undefined, errno: 'EAFNOSUPPORT', message: 'Operation not supported with specified address family' },
  { operation: undefined, errno: 'EMSGSIZE', message: 'Module is wrong version' },
];

/** glibc `strerror()` for the errnos the daemon can return. */
const STRERROR: Readonly<Record<Errno, string>> = {
  EEXIST: 'File exists',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINVAL: 'Invalid argument',
  ERANGE: 'Numerical result out of range',
  ENOMEM: 'Cannot allocate memory',
  EPERM: 'Operation not permitted',
  EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EIO: 'Input/output error',
};

/**
 * What ipvsadm prints (without the newline) when `operation` fails with `errno`; with no operation
 * only the operation-independent entries apply.
 */
export function ipvsStrerror(operation: IpvsOperation | undefined, errno: Errno): string {
  for (const entry of IPVS_STRERROR_TABLE) {
    if ((entry.operation === undefined || entry.operation === operation) && entry.errno === errno) {
      return entry.message;
    }
  }
  return STRERROR[errno] ?? errno;
}

/** The libipvs operation a control command corresponds to. */
export function operationOf(command: Command): IpvsOperation {
  return command.op;
}
