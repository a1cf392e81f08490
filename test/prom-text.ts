/**
 * A small parser of the Prometheus text exposition format (version 0.0.4), for the tests: `# HELP`,
 * `# TYPE`, and samples `name{label="value",...} value [timestamp]` with the format's escapes
 * (\\, \", \n in label values). Strict: a malformed line throws, so the tests also check the format.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  types: Map<string, string>;
  help: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Values as Prometheus reads them (Go's ParseFloat: NaN and Inf in any case; prom-client writes "Nan"). */
function parseValue(text: string): number {
  const t = text.toLowerCase();
  if (t === '+inf' || t === 'inf') return Infinity;
  if (t === '-inf') return -Infinity;
  if (t === 'nan') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad sample value '${text}'`);
  return Number(text);
}

export function parsePrometheusText(text: string): Exposition {
  const out: Exposition = { samples: [], types: new Map(), help: new Map() };
  const lines = text.split('\n');
  lines.forEach((line, n) => {
    const where = `line ${n + 1}: ${line}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (!m) return; // other comments are allowed
      if (m[1] === 'TYPE') {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(m[3])) throw new Error(`bad TYPE, ${where}`);
        if (out.types.has(m[2])) throw new Error(`duplicate TYPE, ${where}`);
        out.types.set(m[2], m[3]);
      } else out.help.set(m[2], m[3].replace(/\\n/g, '\n').replace(/\\\\/g, '\\'));
      return;
    }
    const nm = NAME.exec(line);
    if (!nm) throw new Error(`bad metric name, ${where}`);
    const name = nm[0];
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      for (;;) {
        if (line[i] === '}') {
          i++;
          break;
        }
        const ln = LABEL_NAME.exec(line.slice(i));
        if (!ln) throw new Error(`bad label name, ${where}`);
        i += ln[0].length;
        if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`expected =", ${where}`);
        i += 2;
        let v = '';
        for (;;) {
          const c = line[i];
          if (c === undefined) throw new Error(`unterminated label value, ${where}`);
          if (c === '"') {
            i++;
            break;
          }
          if (c === '\\') {
            const e = line[i + 1];
            if (e === 'n') v += '\n';
            else if (e === '\\' || e === '"') v += e;
            else throw new Error(`bad escape, ${where}`);
            i += 2;
            continue;
          }
          v += c;
          i++;
        }
        if (ln[0] in labels) throw new Error(`duplicate label ${ln[0]}, ${where}`);
        labels[ln[0]] = v;
        if (line[i] === ',') i++;
        else if (line[i] !== '}') throw new Error(`expected , or }, ${where}`);
      }
    }
    if (line[i] !== ' ') throw new Error(`expected a space before the value, ${where}`);
    const rest = line.slice(i + 1).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2) throw new Error(`bad value/timestamp, ${where}`);
    out.samples.push({ name, labels, value: parseValue(rest[0]) });
  });
  return out;
}

/** The samples of `name` whose labels include `match`. */
export function samplesOf(e: Exposition, name: string, match: Record<string, string> = {}): Sample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The one sample of `name` matching `match` (throws if none or several). */
export function valueOf(e: Exposition, name: string, match: Record<string, string> = {}): number {
  const s = samplesOf(e, name, match);
  if (s.length !== 1) throw new Error(`${s.length} samples of ${name} ${JSON.stringify(match)}`);
  return s[0].value;
}
