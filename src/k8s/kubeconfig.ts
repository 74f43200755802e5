/**
 * @module
 * Reading the credentials to reach the API server: from a kubeconfig file (what Multus
 * writes, or an admin kubeconfig), or from the pod's service account. Everything is read
 * afresh on each call, so rotated tokens and certificates are picked up by the next run.
 *
 * Supported: `server`, `certificate-authority(-data)`, `insecure-skip-tls-verify`,
 * `tls-server-name`, `client-certificate(-data)` / `client-key(-data)`, `token`, `tokenFile`.
 * As in client-go, `*-data` wins over the file, `token` wins over `tokenFile`, and relative
 * paths are relative to the kubeconfig's folder. `exec`, `auth-provider`, username/password
 * and `proxy-url` are refused with an error naming the field.
 */

import { parseSimpleYaml } from "./_simple_yaml.ts";
import { CredentialFileError, readCredentialFile } from "./credential_file.ts";
import { KubeconfigError } from "./errors.ts";
import { loadYaml } from "../util/yaml.ts";
import { errorMessage } from "../util/errors.ts";

/** Where Kubernetes mounts a pod's service-account token and CA. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** What is needed to reach and authenticate to the API server. */
export interface KubeCredentials {
  /** Base URL of the API server, without a trailing slash. */
  server: string;
  /** CA bundle (PEM) that signs the server certificate. */
  caPem?: string;
  /** Client certificate (PEM), for client-certificate authentication. */
  certPem?: string;
  /** Client private key (PEM). */
  keyPem?: string;
  /** Bearer token. */
  token?: string;
  /** Do not verify the server certificate (`insecure-skip-tls-verify: true`). */
  insecureSkipTlsVerify: boolean;
  /** Name to verify the server certificate against, instead of the URL's host. */
  tlsServerName?: string;
  /** Where the credentials came from: the kubeconfig path or the service-account folder. */
  source: string;
  /** The credentials are the pod's service account (`source` is its folder). */
  inCluster?: boolean;
  /**
   * Where the CA, the client certificate and the key came from, for messages: e.g.
   * `"certificate-authority-data" of cluster "local"`.
   */
  origins?: { ca?: string; cert?: string; key?: string };
}

/** Options of {@linkcode loadKubeconfig} and {@linkcode inClusterCredentials}. */
export interface CredentialOptions {
  /** Longest time to read each file, in milliseconds (default 10000, as one API request). */
  readTimeoutMs?: number;
}

type Obj = Record<string, unknown>;

/**
 * Loads the credentials of the kubeconfig's `current-context`. JSON and the plain YAML that
 * kubeconfigs are written in are parsed directly; other YAML loads the `yaml` package.
 *
 * The kubeconfig and the files it names must be regular files of at most 4 MiB, each read
 * within `options.readTimeoutMs`.
 *
 * @param path The kubeconfig file.
 * @returns The credentials, with files it names already read.
 * @throws {KubeconfigError} The file cannot be read or parsed, or names something missing
 * or unsupported.
 */
export async function loadKubeconfig(
  path: string,
  options: CredentialOptions = {},
): Promise<KubeCredentials> {
  const reader = new KubeconfigReader(path, options);
  return await reader.load();
}

/**
 * Credentials of the pod's service account, as client-go's `InClusterConfig`: the server
 * from `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT` (IPv6 bracketed), the CA from
 * `ca.crt` and the token from `token` in `saDir`.
 *
 * @param env The environment (e.g. `Deno.env.toObject()`).
 * @param saDir The service-account folder.
 * @throws {KubeconfigError} The variables are not set or the files cannot be read.
 */
export async function inClusterCredentials(
  env: Record<string, string | undefined>,
  saDir: string = SERVICE_ACCOUNT_DIR,
  options: CredentialOptions = {},
): Promise<KubeCredentials> {
  const host = env.KUBERNETES_SERVICE_HOST?.trim();
  const port = env.KUBERNETES_SERVICE_PORT?.trim();
  if (!host || !port) {
    throw new KubeconfigError(
      saDir,
      "Cannot use in-cluster credentials: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set",
      { field: host ? "KUBERNETES_SERVICE_PORT" : "KUBERNETES_SERVICE_HOST" },
    );
  }
  const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  const caFile = `${saDir}/ca.crt`;
  const tokenFile = `${saDir}/token`;
  const read = async (file: string, field: string) => {
    try {
      return await readCredentialFile(file, options.readTimeoutMs);
    } catch (err) {
      throw new KubeconfigError(
        saDir,
        `Cannot use in-cluster credentials: cannot read "${file}": ${errorMessage(err)}`,
        {
          field,
          details:
            `The pod's service account is not usable at ${saDir}: mount it there, or set "kubeconfig" in the multus configuration (multus install writes one)`,
          cause: err,
        },
      );
    }
  };
  const caPem = await read(caFile, "ca.crt");
  if (!isPemCertificate(caPem)) {
    throw new KubeconfigError(
      saDir,
      `Cannot use in-cluster CA "${caFile}": it is not a PEM certificate`,
      {
        field: "ca.crt",
      },
    );
  }
  const token = (await read(tokenFile, "token")).trim();
  if (!token) {
    throw new KubeconfigError(
      saDir,
      `Cannot use in-cluster token "${tokenFile}": the file is empty`,
      {
        field: "token",
      },
    );
  }
  return {
    server: `https://${hostPart}:${port}`,
    caPem,
    token,
    insecureSkipTlsVerify: false,
    source: saDir,
    inCluster: true,
    origins: { ca: `"${caFile}"` },
  };
}

/** One load of one kubeconfig file. */
class KubeconfigReader {
  #path: string;
  #dir: string;
  #readTimeoutMs: number | undefined;

  constructor(path: string, options: CredentialOptions) {
    this.#path = path;
    this.#dir = parentOf(absolute(Deno.cwd(), path));
    this.#readTimeoutMs = options.readTimeoutMs;
  }

  async load(): Promise<KubeCredentials> {
    let text: string;
    try {
      text = await readCredentialFile(this.#path, this.#readTimeoutMs);
    } catch (err) {
      const notFound = err instanceof CredentialFileError && err.notFound;
      throw new KubeconfigError(
        this.#path,
        `Cannot read kubeconfig "${this.#path}": ${errorMessage(err)}`,
        {
          details: notFound
            ? `"kubeconfig" in the multus configuration names this file: multus install writes it (by default /etc/cni/net.d/multus.d/multus.kubeconfig); run it on this node, or fix the path`
            : `"kubeconfig" in the multus configuration names this file: make it a readable kubeconfig (multus install writes one)`,
          cause: err,
        },
      );
    }
    const config = await this.#parse(text);
    if (!isObj(config)) throw this.#error("", "it is not a kubeconfig (expected a mapping)");

    const contextName = this.#string(config, "current-context", "current-context");
    if (!contextName) throw this.#error("current-context", 'it has no "current-context"');
    const context = this.#named(config, "contexts", contextName, "context");
    if (!context) {
      throw this.#error(
        "current-context",
        `context "${contextName}" named by "current-context" is not in "contexts"`,
      );
    }
    const ctxField = `contexts["${contextName}"].context`;
    const clusterName = this.#string(context, "cluster", `${ctxField}.cluster`);
    if (!clusterName) {
      throw this.#error(`${ctxField}.cluster`, `context "${contextName}" names no cluster`);
    }
    const cluster = this.#named(config, "clusters", clusterName, "cluster");
    if (!cluster) {
      throw this.#error(
        `${ctxField}.cluster`,
        `context "${contextName}" names cluster "${clusterName}", which is not in "clusters"`,
      );
    }
    const userName = this.#string(context, "user", `${ctxField}.user`);
    let user: Obj = {};
    if (userName) {
      const found = this.#named(config, "users", userName, "user");
      if (!found) {
        throw this.#error(
          `${ctxField}.user`,
          `context "${contextName}" names user "${userName}", which is not in "users"`,
        );
      }
      user = found;
    }

    const credentials: KubeCredentials = {
      server: "",
      insecureSkipTlsVerify: false,
      source: this.#path,
    };
    await this.#readCluster(clusterName, cluster, credentials);
    await this.#readUser(userName ?? "", user, credentials);
    return credentials;
  }

  async #parse(text: string): Promise<unknown> {
    if (text.trimStart().startsWith("{")) {
      try {
        return JSON.parse(text);
      } catch {
        // Not plain JSON: YAML (a superset) gives the better error.
      }
    }
    // Kubeconfigs are written in a small YAML subset; only other YAML loads the parser.
    const simple = parseSimpleYaml(text);
    if (simple !== undefined) return simple;
    const yaml = await loadYaml();
    const doc = yaml.parseDocument(text, { logLevel: "silent" });
    const error = doc.errors[0];
    if (error) {
      // Only the position and code: the message's code frame could quote a token.
      const pos = error.linePos?.[0];
      const where = pos ? ` at line ${pos.line}, column ${pos.col}` : "";
      throw this.#error("", `it is not valid YAML${where} (${error.code})`);
    }
    try {
      return doc.toJS();
    } catch (err) {
      // An alias bomb or an unresolved alias; only the reason, never the text.
      const reason = errorMessage(err).split(":")[0];
      throw this.#error("", `it cannot be read as YAML (${reason})`);
    }
  }

  async #readCluster(name: string, cluster: Obj, out: KubeCredentials): Promise<void> {
    const field = `clusters["${name}"].cluster`;
    const server = this.#string(cluster, "server", `${field}.server`);
    if (!server) throw this.#error(`${field}.server`, `cluster "${name}" has no "server"`);
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw this.#error(`${field}.server`, `cluster "${name}" has a "server" that is not a URL`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw this.#error(
        `${field}.server`,
        `cluster "${name}" has server "${url.protocol}//${url.host}", which is not an http or https URL`,
      );
    }
    if (url.username || url.password) {
      throw this.#error(
        `${field}.server`,
        `cluster "${name}" has a user name or password in its "server" URL, which this plugin does not support`,
      );
    }
    out.server = server.replace(/\/+$/, "");

    if (cluster["proxy-url"] !== undefined && cluster["proxy-url"] !== "") {
      throw this.#error(
        `${field}.proxy-url`,
        `cluster "${name}" sets "proxy-url", which this plugin does not support; let it reach the API server directly`,
      );
    }
    out.insecureSkipTlsVerify = cluster["insecure-skip-tls-verify"] === true;
    if (out.insecureSkipTlsVerify) {
      // As client-go, before reading the CA: a CA the client would then ignore is a mistake.
      const caKey = ["certificate-authority-data", "certificate-authority"].find((key) =>
        this.#string(cluster, key, `${field}.${key}`)
      );
      if (caKey) {
        throw this.#error(
          `${field}.insecure-skip-tls-verify`,
          `cluster "${name}" sets both "insecure-skip-tls-verify" and "${caKey}": specifying a root certificates file with the insecure flag is not allowed`,
          `Remove "insecure-skip-tls-verify" so that the API server is verified with the certificate authority (or remove "${caKey}" to really skip verification)`,
        );
      }
    }
    const serverName = this.#string(cluster, "tls-server-name", `${field}.tls-server-name`);
    if (serverName) out.tlsServerName = serverName;

    const ca = await this.#pemFromDataOrFile(cluster, {
      field,
      owner: `cluster "${name}"`,
      key: "certificate-authority",
    });
    if (ca !== undefined) {
      if (!isPemCertificate(ca.pem)) {
        throw this.#error(ca.field, `${ca.label} of cluster "${name}" is not a PEM certificate`);
      }
      out.caPem = ca.pem;
      out.origins = { ...out.origins, ca: `${ca.label} of cluster "${name}"` };
    }
  }

  async #readUser(name: string, user: Obj, out: KubeCredentials): Promise<void> {
    const field = `users["${name}"].user`;
    const owner = `user "${name}"`;
    for (const key of ["as", "as-groups", "as-uid", "as-user-extra"]) {
      if (user[key] !== undefined && user[key] !== null && user[key] !== "") {
        throw this.#error(
          `${field}.${key}`,
          `${owner} sets "${key}" (impersonation), which this plugin does not support`,
        );
      }
    }

    const cert = await this.#pemFromDataOrFile(user, { field, owner, key: "client-certificate" });
    const key = await this.#pemFromDataOrFile(user, { field, owner, key: "client-key" });
    if (cert && !key) {
      throw this.#error(
        `${field}.client-key`,
        `${owner} has a client certificate but no client key`,
      );
    }
    if (key && !cert) {
      throw this.#error(
        `${field}.client-certificate`,
        `${owner} has a client key but no client certificate`,
      );
    }
    if (cert && key) {
      if (!isPemCertificate(cert.pem)) {
        throw this.#error(cert.field, `${cert.label} of ${owner} is not a PEM certificate`);
      }
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.pem)) {
        throw this.#error(key.field, `${key.label} of ${owner} is not a PEM private key`);
      }
      if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(key.pem)) {
        throw this.#error(
          key.field,
          `${key.label} of ${owner} is encrypted, which is not supported`,
        );
      }
      out.certPem = cert.pem;
      out.keyPem = key.pem;
      out.origins = {
        ...out.origins,
        cert: `${cert.label} of ${owner}`,
        key: `${key.label} of ${owner}`,
      };
    }

    const token = this.#string(user, "token", `${field}.token`);
    if (token) {
      out.token = token;
    } else {
      const tokenKey = user.tokenFile !== undefined ? "tokenFile" : "token-file";
      const tokenFile = this.#string(user, tokenKey, `${field}.${tokenKey}`);
      if (tokenFile) {
        const file = absolute(this.#dir, tokenFile);
        const read = (await this.#readReferenced(file, `${field}.${tokenKey}`, owner)).trim();
        if (!read) {
          throw this.#error(
            `${field}.${tokenKey}`,
            `the token file "${file}" named by ${owner} is empty`,
          );
        }
        out.token = read;
      }
    }

    const hasCredential = out.token !== undefined || out.certPem !== undefined;
    // client-go: a token or a client certificate wins over exec / auth-provider plugins.
    if (!hasCredential) {
      if (isSet(user.exec)) {
        throw this.#error(
          `${field}.exec`,
          `${owner} uses the "exec" authentication method, which this plugin does not support; use a token or client certificate`,
        );
      }
      if (isSet(user["auth-provider"])) {
        const provider = (user["auth-provider"] as Obj)?.name;
        const which = typeof provider === "string" && /^[\w.-]{1,64}$/.test(provider)
          ? ` ("${provider}")`
          : "";
        throw this.#error(
          `${field}.auth-provider`,
          `${owner} uses the "auth-provider" authentication method${which}, which this plugin does not support; use a token or client certificate`,
        );
      }
      if (isSet(user.username) || isSet(user.password)) {
        throw this.#error(
          `${field}.username`,
          `${owner} uses the "username/password" authentication method, which this plugin does not support; use a token or client certificate`,
        );
      }
    }
  }

  /** `<key>-data` (base64) if set, else the file `<key>`; undefined when neither is set. */
  async #pemFromDataOrFile(
    obj: Obj,
    options: { field: string; owner: string; key: string },
  ): Promise<{ pem: string; field: string; label: string } | undefined> {
    const { field, owner, key } = options;
    const dataField = `${field}.${key}-data`;
    const data = this.#string(obj, `${key}-data`, dataField);
    if (data) {
      return {
        pem: this.#base64(data, dataField, `"${key}-data" of ${owner}`),
        field: dataField,
        label: `"${key}-data"`,
      };
    }
    const fileField = `${field}.${key}`;
    const file = this.#string(obj, key, fileField);
    if (!file) return undefined;
    const abs = absolute(this.#dir, file);
    const pem = await this.#readReferenced(abs, fileField, owner);
    return { pem, field: fileField, label: `"${key}" file "${abs}"` };
  }

  #base64(data: string, field: string, label: string): string {
    try {
      const binary = atob(data.replace(/\s+/g, ""));
      const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
      return new TextDecoder().decode(bytes);
    } catch {
      throw this.#error(field, `${label} is not valid base64`);
    }
  }

  async #readReferenced(file: string, field: string, owner: string): Promise<string> {
    try {
      return await readCredentialFile(file, this.#readTimeoutMs);
    } catch (err) {
      throw new KubeconfigError(
        this.#path,
        `Cannot read "${file}" named by ${owner} in kubeconfig "${this.#path}": ${
          errorMessage(err)
        }`,
        { field, cause: err },
      );
    }
  }

  /** The entry called `name` in the list `section` (`clusters`, …), its `inner` object. */
  #named(config: Obj, section: string, name: string, inner: string): Obj | undefined {
    const list = config[section];
    if (list === undefined || list === null) return undefined;
    if (!Array.isArray(list)) throw this.#error(section, `"${section}" is not a list`);
    const entry = list.find((e) => isObj(e) && e.name === name);
    if (!entry) return undefined;
    const value = (entry as Obj)[inner];
    if (value === undefined || value === null) return {};
    if (!isObj(value)) {
      throw this.#error(
        `${section}["${name}"].${inner}`,
        `"${section}["${name}"].${inner}" is not a mapping`,
      );
    }
    return value;
  }

  /** A string field; undefined when absent or null. */
  #string(obj: Obj, key: string, field: string): string | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    // Never quote the value: it may be a token.
    if (typeof value !== "string") throw this.#error(field, `"${field}" is not a string`);
    return value;
  }

  #error(field: string, what: string, details?: string): KubeconfigError {
    return new KubeconfigError(this.#path, `Cannot use kubeconfig "${this.#path}": ${what}`, {
      field,
      details,
    });
  }
}

/**
 * `path` made absolute against `base`, with `.` and `..` segments resolved. (`node:path`'s
 * `resolve` would do, but its first call costs ~15 ms of start-up.)
 */
function absolute(base: string, path: string): string {
  const parts: string[] = [];
  for (const segment of (path.startsWith("/") ? path : `${base}/${path}`).split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") parts.pop();
    else parts.push(segment);
  }
  return `/${parts.join("/")}`;
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : "/";
}

function isPemCertificate(text: string): boolean {
  return text.includes("-----BEGIN CERTIFICATE-----");
}

function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}
