/**
 * @module
 * The kubeconfig the plugin uses on the host (`<cni-conf-dir>/multus.d/multus.kubeconfig`),
 * built from this pod's service account.
 *
 * The service account directory normally is the pod's projected volume, which the host only
 * sees under a kubelet path that changes with every pod and vanishes when the pod is deleted.
 * So, like Multus, the token and CA are embedded; unlike Multus, the installer keeps watching
 * them and rewrites the file when the kubelet rotates the token, so the host never holds an
 * expired token while the DaemonSet runs, and a replaced DaemonSet pod never leaves the plugin
 * pointing at a deleted file. When the directory is a host path (under `--host-prefix`), the
 * files are referenced instead (`tokenFile`, `certificate-authority`): the plugin re-reads
 * them on every call and rotation needs no rewrite at all.
 */

import { join } from "../util/path.ts";
import { isUnderHostPrefix, toHostPath } from "./flags.ts";
import { errorMessage } from "../util/errors.ts";

/** Inputs of {@linkcode renderKubeconfig}. */
export interface KubeconfigOptions {
  /** Service account directory (with `token` and `ca.crt`). */
  serviceAccountDir: string;
  /** `--host-prefix`. */
  hostPrefix: string;
  /** `--skip-tls-verify`. */
  skipTlsVerify: boolean;
  /** Environment (KUBERNETES_SERVICE_HOST, _PORT, _PROTOCOL). */
  env: Record<string, string | undefined>;
}

/** A rendered kubeconfig and what went into it (never the token itself). */
export interface RenderedKubeconfig {
  /** File content. */
  text: string;
  /** API server URL. */
  server: string;
  /** `embedded` (token and CA data in the file) or `referenced` (tokenFile / CA path). */
  credentials: "embedded" | "referenced";
  /** SHA-256 (hex) of the token file, to report rotation. */
  tokenHash: string;
  /** SHA-256 (hex) of the CA file, or "" with skip-tls-verify. */
  caHash: string;
}

/**
 * Builds the kubeconfig text.
 *
 * @throws {Error} When KUBERNETES_SERVICE_HOST/PORT are unset or the token or CA cannot be
 * read; the message names the variable or the path.
 */
export async function renderKubeconfig(options: KubeconfigOptions): Promise<RenderedKubeconfig> {
  const server = apiServerUrl(options.env);
  const tokenPath = join(options.serviceAccountDir, "token");
  const caPath = join(options.serviceAccountDir, "ca.crt");
  const token = await readCredential(tokenPath, "service account token");
  const tokenText = new TextDecoder().decode(token).trim();
  if (tokenText === "") throw new Error(`The service account token ${tokenPath} is empty`);
  const ca = options.skipTlsVerify ? undefined : await readCredential(caPath, "cluster CA");
  const referenced = isUnderHostPrefix(options.serviceAccountDir, options.hostPrefix);

  let tlsLine: string;
  if (options.skipTlsVerify) {
    tlsLine = "insecure-skip-tls-verify: true";
  } else if (referenced) {
    tlsLine = `certificate-authority: ${quote(toHostPath(caPath, options.hostPrefix))}`;
  } else {
    tlsLine = `certificate-authority-data: ${quote(base64(ca!))}`;
  }
  const userLine = referenced
    ? `tokenFile: ${quote(toHostPath(tokenPath, options.hostPrefix))}`
    : `token: ${quote(tokenText)}`;

  const text = [
    "# Kubeconfig file for Multus CNI plugin.",
    "# Written by `multus install` from the service account of its pod; rewritten when the",
    "# token or the CA changes. Do not edit: changes are overwritten.",
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "  - name: local",
    "    cluster:",
    `      server: ${quote(server)}`,
    `      ${tlsLine}`,
    "users:",
    "  - name: multus",
    "    user:",
    `      ${userLine}`,
    "contexts:",
    "  - name: multus-context",
    "    context:",
    "      cluster: local",
    "      user: multus",
    "current-context: multus-context",
    "",
  ].join("\n");
  return {
    text,
    server,
    credentials: referenced ? "referenced" : "embedded",
    tokenHash: await sha256Hex(token),
    caHash: ca ? await sha256Hex(ca) : "",
  };
}

/**
 * The API server URL from the in-cluster environment: `https://host:port`, IPv6 literals in
 * brackets, `KUBERNETES_SERVICE_PROTOCOL` when set (as Multus does).
 *
 * @throws {Error} When KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is unset.
 */
export function apiServerUrl(env: Record<string, string | undefined>): string {
  const host = env.KUBERNETES_SERVICE_HOST ?? "";
  const port = env.KUBERNETES_SERVICE_PORT ?? "";
  if (host === "" || port === "") {
    throw new Error(
      "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (they are in a pod) " +
        "to write the kubeconfig",
    );
  }
  const protocol = env.KUBERNETES_SERVICE_PROTOCOL || "https";
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${protocol}://${bracketed}:${port}`;
}

async function readCredential(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "no such file (is the ServiceAccount token mounted? see --service-account-dir)"
      : errorMessage(err);
    throw new Error(`Cannot read the ${what} ${path}: ${reason}`);
  }
}

/** A YAML double-quoted scalar (JSON string syntax is valid YAML). */
function quote(value: string): string {
  return JSON.stringify(value);
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
