/**
 * tapvs's own subcommands (`top`, `checkers`, `reload`) are a bare word, which ipvsadm never takes first;
 * `--socket PATH` may come before the word.
 */

/** The arguments (with any leading --socket) when this invocation is `tapvs [--socket PATH] WORD ...`, else null. */
export function subcommandArguments(argv: readonly string[], word: string): string[] | null {
  let i = 0;
  const before: string[] = [];
  while (i < argv.length && (argv[i] === '--socket' || argv[i]!.startsWith('--socket='))) {
    before.push(argv[i]!);
    if (argv[i] === '--socket' && i + 1 < argv.length) before.push(argv[++i]!);
    i++;
  }
  return argv[i] === word ? [...before, ...argv.slice(i + 1)] : null;
}

/** The value of --socket in a subcommand's arguments and the rest, or an error. */
export function takeSocketOption(argv: readonly string[]): { socket: string | undefined; rest: string[] } | { error: string } {
  let socket: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--socket') {
      if (i + 1 >= argv.length) return { error: '--socket needs a path' };
      socket = argv[++i];
    } else if (a.startsWith('--socket=')) socket = a.slice('--socket='.length);
    else rest.push(a);
  }
  return { socket, rest };
}
