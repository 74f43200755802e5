/**
 * @module
 * The kubeconfig a Multus config names: read with the plugin's own loader, as every ADD and
 * DEL in Kubernetes mode reads it, so a missing, unreadable or broken file is found before a
 * pod needs it. Nothing from the file reaches a finding but the loader's messages, which never
 * quote a credential.
 */

import { loadKubeconfig } from "../k8s/kubeconfig.ts";
import type { Report, Where } from "./_findings.ts";
import { errorMessage } from "../util/errors.ts";

/** Options of {@linkcode checkKubeconfig}. */
export interface KubeconfigCheck {
  /** The config's `kubeconfig` key ("" when unset). */
  configured: string;
  /** `--kubeconfig`: a copy of the node's file to read instead. */
  override?: string;
  /** The config's `kubeconfig` key, for findings. */
  where: Where;
}

/** Reports what would make the plugin fail to load the kubeconfig. */
export async function checkKubeconfig(report: Report, check: KubeconfigCheck): Promise<void> {
  const { configured, override, where } = check;
  if (configured === "") {
    if (override !== undefined) {
      report.warning(
        where,
        `--kubeconfig ${override} is not checked: this Multus config sets no "kubeconfig", so ` +
          "the plugin reads none",
        { hint: 'Set "kubeconfig" in the Multus config, or drop --kubeconfig' },
      );
    }
    return;
  }
  const path = override ?? configured;
  const named = override === undefined
    ? `kubeconfig "${path}"`
    : `kubeconfig "${path}" (given for "${configured}")`;
  const regenerate = "multus install writes it from its service account (the DaemonSet's, or " +
    "by hand: see the README's manual install)";
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    const missing = err instanceof Deno.errors.NotFound;
    report.error(
      where,
      `${named} ${
        missing ? "does not exist" : `cannot be read (${errorMessage(err)})`
      }: the plugin fails every ADD and DEL that needs the API`,
      {
        hint: `${regenerate}. Checking a copy of a node's config elsewhere? Pass --kubeconfig ` +
          "with a copy of the node's kubeconfig",
      },
    );
    return;
  }
  if (!info.isFile) {
    report.error(where, `${named} is not a regular file`, {
      hint: `Point "kubeconfig" at the kubeconfig file; ${regenerate}`,
    });
    return;
  }
  try {
    await loadKubeconfig(path);
  } catch (err) {
    report.fromError(where, err, {
      hint: `Fix what the message names, or write the file again: ${regenerate}`,
    });
  }
}
