/**
 * @module
 * Command line of `multus validate`.
 */

import { parseLongOptions } from "../util/cli_args.ts";
import { errorMessage } from "../util/errors.ts";

/** The parsed command line. */
export interface ValidateArgs {
  /** Files to check (`-` = standard input). */
  files: string[];
  /** `--config`: the Multus config. */
  config?: string;
  /** `--bin-dir` (repeatable); empty = the config's binDir plus /opt/cni/bin. */
  binDirs: string[];
  /** `--conf-dir`; undefined = the config's confDir. */
  confDir?: string;
  /** `--kubeconfig`; undefined = the file the config's `kubeconfig` names. */
  kubeconfig?: string;
  json: boolean;
  help: boolean;
}

/** A command-line mistake (exit code 2). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Usage text of `multus validate --help`. */
export const VALIDATE_HELP = `usage: multus validate [flags] [file|dir|-]...

Checks Multus configs, NetworkAttachmentDefinitions and pods offline, without a cluster, and
reports every problem the plugin would hit at ADD time.

Files: Multus configs (.conf/.conflist JSON with "type": "multus"), NetworkAttachmentDefinition
and pod YAML or JSON (several documents and List objects allowed; Deployments and other
workloads are checked through their pod template), plain CNI configs, and the DRA objects
of device networks (ResourceClaim, ResourceClaimTemplate, ResourceSlice, DeviceClass of
resource.k8s.io; a slice's k8s.cni.cncf.io/deviceID and resourceName attributes closely). A directory stands for
its .conf, .conflist, .json, .yaml and .yml files; - reads standard input. Objects without
metadata.namespace are taken to be in "default".

flags:
  --config <file>     the Multus config (default: the first file with "type": "multus", else
                      /etc/cni/net.d/00-multus.conf(list) when present)
  --bin-dir <dir>     a CNI bin dir to find plugins in; repeatable (default: the config's
                      binDir, then /opt/cni/bin)
  --conf-dir <dir>    where configs named by NADs without spec.config and by clusterNetwork or
                      defaultNetworks names are looked up (default: the config's confDir)
  --kubeconfig <file> the kubeconfig to check instead of the one the Multus config names
                      (a copy of the node's, when checking its config elsewhere)
  --json              print {"ok": bool, "findings": [{severity, file, path, message, hint}]}
  -h, --help          print this help

exit status: 0 no errors (warnings allowed), 1 errors found, 2 usage error
`;

/** Parses the arguments; throws {@linkcode UsageError}. */
export function parseValidateArgs(args: string[]): ValidateArgs {
  let parsed;
  try {
    parsed = parseLongOptions(args, {
      allowPositionals: true,
      options: {
        config: { type: "string" },
        "bin-dir": { type: "string", multiple: true },
        "conf-dir": { type: "string" },
        kubeconfig: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
  const { positionals } = parsed;
  const values = parsed.values as {
    config?: string;
    "bin-dir"?: string[];
    "conf-dir"?: string;
    kubeconfig?: string;
    json?: boolean;
    help?: boolean;
  };
  for (
    const [flag, value] of [
      ["--config", values.config],
      ["--conf-dir", values["conf-dir"]],
      ["--kubeconfig", values.kubeconfig],
    ]
  ) {
    if (value === "") throw new UsageError(`${flag} needs a value`);
  }
  const binDirs = values["bin-dir"] ?? [];
  if (binDirs.includes("")) throw new UsageError("--bin-dir needs a value");
  const stdin = positionals.filter((f) => f === "-").length + (values.config === "-" ? 1 : 0);
  if (stdin > 1) throw new UsageError("standard input (-) can be read only once");
  return {
    files: positionals,
    config: values.config,
    binDirs,
    confDir: values["conf-dir"],
    kubeconfig: values.kubeconfig,
    json: values.json ?? false,
    help: values.help ?? false,
  };
}
