/**
 * @module
 * Installer step: write the plugin's kubeconfig from the service account, and say what
 * changed when it is rewritten (token, CA, server).
 */

import { errorMessage } from "../util/errors.ts";
import { installText } from "./_binary.ts";
import { type RenderedKubeconfig, renderKubeconfig } from "./_kubeconfig.ts";
import { resolve } from "../util/path.ts";
import { exists, InstallError, type InstallRun } from "./_run.ts";

const KUBECONFIG_MODE = 0o600;

/** Writes the kubeconfig when its content changed; fails with an {@linkcode InstallError}. */
export async function writeKubeconfig(run: InstallRun): Promise<void> {
  let rendered: RenderedKubeconfig;
  try {
    rendered = await renderKubeconfig({
      serviceAccountDir: resolve(run.flags.serviceAccountDir),
      hostPrefix: run.flags.hostPrefix,
      skipTlsVerify: run.flags.skipTlsVerify,
      env: run.env,
    });
  } catch (err) {
    throw new InstallError(errorMessage(err));
  }
  const target = run.kubeconfigPath;
  const existed = await exists(target);
  let result;
  try {
    result = await installText(target, rendered.text, KUBECONFIG_MODE);
  } catch (err) {
    throw new InstallError(errorMessage(err));
  }
  run.owned.set(target, rendered.text);
  run.clearTopic("kubeconfig");
  const last = run.lastKubeconfig;
  run.lastKubeconfig = rendered;
  if (!result.changed) {
    if (!last) run.say(`${target} is up to date`);
    return;
  }
  if (!last || !existed) {
    const how = rendered.credentials === "embedded"
      ? "token and CA embedded, rewritten when they change"
      : "tokenFile and CA referenced by host path, read by the plugin at every call";
    run.say(`Wrote kubeconfig ${target} (server ${rendered.server}; ${how})`);
    return;
  }
  const what = [];
  if (last.tokenHash !== rendered.tokenHash) what.push("the service account token");
  if (last.caHash !== rendered.caHash) what.push("the cluster CA");
  if (last.server !== rendered.server) what.push("the API server address");
  run.say(`Refreshed kubeconfig ${target}: ${what.join(" and ") || "its content"} changed`);
}
