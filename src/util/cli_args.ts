/**
 * @module
 * A strict long-option parser: the part of `node:util` parseArgs our subcommands use.
 * `node:util` is not used because importing any `node:` module costs the plugin ~20 ms at
 * every start once the program is bundled (bundlers hoist such imports to the top).
 */

/** One option. */
export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
}

/** Parsed options and positionals. */
export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Parses `--name=value`, `--name value` (strings), `--name` (booleans), `-x` (short names),
 * `--` (end of options); `-` alone is a positional. Unknown options, a value for a boolean,
 * a missing value, and positionals when not allowed throw TypeError.
 */
export function parseLongOptions(
  args: string[],
  options: { options: Record<string, OptionSpec>; allowPositionals?: boolean },
): ParsedArgs {
  const specs = options.options;
  const shorts = new Map(
    Object.entries(specs).filter(([, s]) => s.short).map(([name, s]) => [s.short!, name]),
  );
  const values: ParsedArgs["values"] = {};
  const positionals: string[] = [];
  const set = (name: string, value: string | boolean) => {
    const spec = specs[name];
    if (spec.multiple) values[name] = [...((values[name] as string[]) ?? []), value as string];
    else values[name] = value;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-" || !arg.startsWith("-")) {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
    } else {
      const long = shorts.get(arg.slice(1));
      if (long === undefined) throw new TypeError(`Unknown option '${arg}'`);
      name = long;
    }
    const spec = specs[name];
    if (!spec) throw new TypeError(`Unknown option '--${name}'`);
    if (spec.type === "boolean") {
      if (inline !== undefined) throw new TypeError(`Option '--${name}' does not take an argument`);
      set(name, true);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= args.length) throw new TypeError(`Option '--${name} <value>' argument missing`);
      value = args[++i];
    }
    set(name, value);
  }
  if (!options.allowPositionals && positionals.length > 0) {
    throw new TypeError(`Unexpected argument '${positionals[0]}'`);
  }
  return { values, positionals };
}
