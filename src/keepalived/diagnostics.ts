/**
 * Configuration diagnostics with the file:line they refer to. The three severities follow
 * `keepalived -t` (keepalived.8, config_test_exit):
 *
 *  - `error`: the configuration cannot be run (keepalived exit 3: file not found, a keyword missing its
 *    parameter, an include cycle) — and, in tapvs, anything the data plane refuses (e.g. GUE/GRE tunnels today).
 *  - `warning`: keepalived's report_config_error: the value is ignored, clamped or defaulted and the
 *    configuration still runs (keepalived exit 4; this includes unknown keywords).
 *  - `note`: tapvs information that keepalived would not report (a VRRP block that is not active yet,
 *    an include pattern that matched nothing). Never changes the exit status.
 */
export interface SourceRef {
  file: string;
  line: number;
}

export type Severity = 'error' | 'warning' | 'note';

export interface Diagnostic extends SourceRef {
  severity: Severity;
  message: string;
}

/** `FILE:LINE: severity: message`, the format of compilers and of `tapvsd --rules` errors. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}: ${d.severity}: ${d.message}`;
}

export function formatRef(at: SourceRef): string {
  return `${at.file}:${at.line}`;
}

export class Diagnostics {
  readonly list: Diagnostic[] = [];

  add(severity: Severity, at: SourceRef, message: string): void {
    this.list.push({ severity, file: at.file, line: at.line, message });
  }
  error(at: SourceRef, message: string): void {
    this.add('error', at, message);
  }
  warn(at: SourceRef, message: string): void {
    this.add('warning', at, message);
  }
  note(at: SourceRef, message: string): void {
    this.add('note', at, message);
  }
  get errors(): Diagnostic[] {
    return this.list.filter((d) => d.severity === 'error');
  }
  get warnings(): Diagnostic[] {
    return this.list.filter((d) => d.severity === 'warning');
  }
}

/** keepalived -t's exit status for a set of diagnostics: 3 cannot run, 4 errors fixed up, 0 clean. */
export function checkExitCode(diags: readonly Diagnostic[]): number {
  if (diags.some((d) => d.severity === 'error')) return 3;
  if (diags.some((d) => d.severity === 'warning')) return 4;
  return 0;
}
