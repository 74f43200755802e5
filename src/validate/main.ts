/**
 * @module
 * `multus validate`: offline checks, for air-gapped operators, of a Multus config,
 * NetworkAttachmentDefinitions and pods. It reports every problem ADD would hit (bad JSON or
 * YAML, unknown keys, missing plugin binaries, a kubeconfig the plugin cannot load, networks
 * that cannot be resolved, annotation errors, capability mismatches, interface name clashes,
 * namespace isolation violations, unsupported CNI versions) using the plugin's own loaders and
 * resolution rules.
 *
 * Exit status: 0 without errors (warnings allowed), 1 with errors, 2 for usage errors.
 */

import { parseNetworkConfig } from "../cni/network_config.ts";
import { NETCONF_DEFAULTS } from "../multus/config/netconf.ts";
import { parseValidateArgs, UsageError, VALIDATE_HELP, type ValidateArgs } from "./_args.ts";
import { Context, DEFAULT_SETTINGS } from "./_context.ts";
import { type Checked, formatJson, formatText, Report, within } from "./_findings.ts";
import {
  classify,
  type Input,
  isObject,
  type MultusInput,
  type NadInput,
  type NetworkInput,
  parseSource,
  type PodInput,
  readSources,
} from "./_inputs.ts";
import { networkConfigErrors } from "./_every_error.ts";
import { checkKubeconfig } from "./_kubeconfig.ts";
import { checkMultusNetworks, type LoadedMultus, loadMultusConfig } from "./_multus_config.ts";
import { checkNad, checkNetworkConfig } from "./_networks.ts";
import { checkPod } from "./_pods.ts";
import { checkDraObject, type DraInput } from "./_dra.ts";

/** Where the node's Multus config is, when none is given. */
export const DEFAULT_CONFIG_PATHS: readonly string[] = [
  "/etc/cni/net.d/00-multus.conf",
  "/etc/cni/net.d/00-multus.conflist",
];

/** The bin dir always searched after the config's binDir. */
const STANDARD_BIN_DIR = "/opt/cni/bin";

const encoder = new TextEncoder();

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}

/** Runs `multus validate` with its arguments; returns the exit code (0, 1, or 2). */
export async function runValidate(args: string[]): Promise<number> {
  let options: ValidateArgs;
  try {
    options = parseValidateArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    write(Deno.stderr, `multus validate: ${err.message}\nsee multus validate --help\n`);
    return 2;
  }
  if (options.help) {
    write(Deno.stdout, VALIDATE_HELP);
    return 0;
  }
  let configPath = options.config;
  if (configPath === undefined && options.files.length === 0) {
    configPath = await firstExisting(DEFAULT_CONFIG_PATHS);
    if (configPath === undefined) {
      write(
        Deno.stderr,
        "multus validate: nothing to validate: give files (or - for standard input), or " +
          "--config; no /etc/cni/net.d/00-multus.conf here\nsee multus validate --help\n",
      );
      return 2;
    }
  }

  const report = new Report();
  const checked = await validate(report, { ...options, config: configPath });
  write(Deno.stdout, options.json ? formatJson(report) : formatText(report, checked));
  return report.errors > 0 ? 1 : 0;
}

async function firstExisting(paths: readonly string[]): Promise<string | undefined> {
  for (const path of paths) {
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** The inputs given on the command line, by kind. */
interface Inputs {
  nads: NadInput[];
  pods: PodInput[];
  networks: NetworkInput[];
  multus: MultusInput[];
  dra: DraInput[];
  /** Documents that are none of these (counted in the summary). */
  ignored: number;
}

/** The Multus configs: the one in force (loaded when valid) and the others given. */
interface MultusConfigs {
  active: MultusInput | undefined;
  loaded: LoadedMultus | undefined;
  others: LoadedMultus[];
}

/** Reads every input and runs every check; returns what was checked. */
async function validate(report: Report, options: ValidateArgs): Promise<Checked> {
  const inputs = await readInputs(options.files, report);
  const configs = await loadMultusConfigs(inputs, options.config, report);
  const ctx = await makeContext(report, options, configs.loaded);
  await checkNads(ctx, inputs.nads);
  await checkMultusConfigs(ctx, configs, inputs, options.kubeconfig);
  for (const pod of inputs.pods) checkPod(ctx, pod);
  for (const object of inputs.dra) checkDraObject(report, object);
  await checkNetworkConfigs(ctx, inputs.networks);
  return {
    multusConfigs: (configs.loaded || configs.active ? 1 : 0) + inputs.multus.length,
    nads: inputs.nads.length,
    pods: inputs.pods.length,
    networkConfigs: inputs.networks.length,
    draObjects: inputs.dra.length,
    ignored: inputs.ignored,
  };
}

/** Reads and parses every file argument and sorts its documents by kind. */
async function readInputs(files: string[], report: Report): Promise<Inputs> {
  const inputs: Input[] = [];
  let ignored = 0;
  for (const arg of files) {
    for (const source of await readSources(arg, report)) {
      for (const doc of await parseSource(source, report)) {
        const found = classify(doc, report);
        inputs.push(...found.inputs);
        ignored += found.ignored;
      }
    }
  }
  const of = <K extends Input["kind"]>(kind: K) =>
    inputs.filter((i): i is Extract<Input, { kind: K }> => i.kind === kind);
  return {
    nads: of("nad"),
    pods: of("pod"),
    networks: of("network"),
    multus: of("multus"),
    dra: of("dra"),
    ignored,
  };
}

/**
 * Loads the Multus config in force (--config, or the node's, else the first one given) and
 * the others; `inputs.multus` keeps only the others. Each other one gets a warning.
 */
async function loadMultusConfigs(
  inputs: Inputs,
  configPath: string | undefined,
  report: Report,
): Promise<MultusConfigs> {
  const multusInputs = inputs.multus;
  let active: MultusInput | undefined;
  if (configPath !== undefined) {
    active = await readConfigFile(configPath, report);
    if (active) {
      const same = multusInputs.findIndex((m) => m.where.file === active!.where.file);
      if (same >= 0) multusInputs.splice(same, 1);
    }
  } else {
    active = multusInputs.shift();
  }
  const loaded = active ? loadMultusConfig(active, report) : undefined;
  const others: LoadedMultus[] = [];
  for (const input of multusInputs) {
    const other = loadMultusConfig(input, report);
    if (other) others.push(other);
    if (active) {
      report.warning(
        input.where,
        `another Multus config: pods are checked against ${active.where.file} only`,
        { hint: "Check one node's Multus config at a time (--config)" },
      );
    }
  }
  return { active, loaded, others };
}

/** The checks' context: bin dirs (warned about when missing here), conf dir, settings. */
async function makeContext(
  report: Report,
  options: ValidateArgs,
  loaded: LoadedMultus | undefined,
): Promise<Context> {
  const conf = loaded?.conf;
  const binDirs = options.binDirs.length > 0
    ? options.binDirs
    : [...new Set([conf?.binDir ?? NETCONF_DEFAULTS.binDir, STANDARD_BIN_DIR])];
  const ctx = new Context(report, {
    binDirs,
    confDir: options.confDir ?? conf?.confDir ?? NETCONF_DEFAULTS.confDir,
    settings: conf ?? DEFAULT_SETTINGS,
  });
  for (const dir of binDirs) {
    const exists = await Deno.stat(dir).then((i) => i.isDirectory, () => false);
    if (!exists) {
      report.warning(
        { file: dir, path: "" },
        `bin dir ${dir} does not exist here: no plugin can be found in it`,
        { hint: "Pass --bin-dir <dir> with a copy of the node's CNI bin dir" },
      );
    }
  }
  return ctx;
}

/** Checks each NetworkAttachmentDefinition and records it for the pods (the last one wins). */
async function checkNads(ctx: Context, nadInputs: NadInput[]): Promise<void> {
  for (const input of nadInputs) {
    const entry = await checkNad(ctx, input);
    if (!entry) continue;
    const previous = ctx.nads.get(entry.label);
    if (previous) {
      ctx.report.warning(
        entry.where,
        `NetworkAttachmentDefinition ${entry.label} is defined again (first in ${previous.where.file}); the last one is used`,
        { hint: "Keep one definition per namespace and name" },
      );
    }
    ctx.nads.set(entry.label, entry);
  }
}

/**
 * Checks the kubeconfig and the networks of every Multus config, the one in force last (its
 * cluster network is the one the pods see); warns when pods come without one.
 */
async function checkMultusConfigs(
  ctx: Context,
  configs: MultusConfigs,
  inputs: Inputs,
  kubeconfigOverride: string | undefined,
): Promise<void> {
  const report = ctx.report;
  const usesKubernetes = inputs.pods.length > 0 || inputs.nads.length > 0;
  for (const other of configs.others) {
    const saved = ctx.cluster;
    await checkKubeconfig(report, {
      configured: other.conf.kubeconfig,
      where: within(other.where, "kubeconfig"),
    });
    await checkMultusNetworks(ctx, other, { usesKubernetes });
    ctx.cluster = saved;
  }
  const loaded = configs.loaded;
  if (loaded) {
    await checkKubeconfig(report, {
      configured: loaded.conf.kubeconfig,
      override: kubeconfigOverride,
      where: within(loaded.where, "kubeconfig"),
    });
    await checkMultusNetworks(ctx, loaded, { usesKubernetes });
  } else if (!configs.active && inputs.pods.length > 0) {
    report.warning(
      { file: "<none>", path: "" },
      "no Multus config given: pods are checked against Multus's defaults, without the " +
        "cluster network",
      {
        hint: 'Pass --config <00-multus.conf>, or give a file with "type": "multus"',
      },
    );
  }
}

/** Checks each plain network config (.conf/.conflist) given: every error, then the plugins. */
async function checkNetworkConfigs(ctx: Context, networkInputs: NetworkInput[]): Promise<void> {
  const report = ctx.report;
  for (const input of networkInputs) {
    const errors = networkConfigErrors(input.text, "");
    for (const err of errors) report.fromError(input.where, err, { field: true });
    if (errors.length > 0) continue;
    try {
      const config = parseNetworkConfig(input.text, "");
      await checkNetworkConfig(ctx, config, { where: input.where });
    } catch (err) {
      report.fromError(input.where, err, { field: true });
    }
  }
}

/** The `--config` file as a Multus config, whatever its type says (loading reports that). */
async function readConfigFile(path: string, report: Report): Promise<MultusInput | undefined> {
  for (const source of await readSources(path, report)) {
    const docs = await parseSource(source, report);
    if (docs.length === 0) return undefined;
    const found = classify(docs[0], report).inputs[0];
    if (found?.kind === "multus") return found;
    if (found?.kind === "network") return { kind: "multus", where: found.where, text: found.text };
    if (isObject(docs[0].value)) {
      return {
        kind: "multus",
        where: docs[0].where,
        text: docs[0].jsonText ?? JSON.stringify(docs[0].value),
      };
    }
    report.error(within(docs[0].where, ""), "the Multus config must be a JSON object");
    return undefined;
  }
  return undefined;
}
