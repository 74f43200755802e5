/**
 * @module
 * TLS failures in words. The TLS stacks (rustls under `fetch`, Node's error codes under
 * `node:https`) report codes such as `UnknownIssuer`, `BadEncoding` or
 * `ERR_TLS_CERT_ALTNAME_INVALID`; an operator needs to know which setting of which
 * kubeconfig is wrong and what to put there instead.
 */

import type { KubeCredentials } from "./kubeconfig.ts";

/** A TLS failure explained: what went wrong, what to do, and whose fault it is. */
export interface TlsProblem {
  /** What went wrong, to follow "Cannot get pod …: ". */
  what: string;
  /** What to do about it. */
  details: string;
  /** The failure lies in our own settings (a bad CA or client key), not in the server. */
  ours: boolean;
}

/** A known failure: the codes that name it (the first found is quoted) and what it means. */
interface Known {
  codes: string[];
  explain(creds: KubeCredentials): { problem: string; details: string };
}

/** Failures of the handshake, in the order they are looked for. */
const HANDSHAKE: Known[] = [
  {
    // Plain HTTP (or another protocol) where TLS was expected.
    codes: [
      "InvalidContentType",
      "WRONG_VERSION_NUMBER",
      "wrong version number",
      "corrupt message",
    ],
    explain: (creds) => ({
      problem: "the server does not speak TLS there",
      details: `Check the port of "server" in ${
        sourceLabel(creds)
      }: it must be the API server's HTTPS port (usually 6443 or 443)`,
    }),
  },
  {
    codes: ["UnsupportedCertVersion"],
    explain: () => ({
      problem:
        "its certificate (or one of its chain) is an X.509 version 1 certificate, which is refused",
      details:
        'Reissue the API server\'s certificate as X.509 version 3, with a subjectAltName for the address in "server"',
    }),
  },
  {
    codes: ["NotValidForName", "ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match"],
    explain: (creds) => ({
      problem: `its certificate is not valid for ${
        creds.tlsServerName ? `"${creds.tlsServerName}"` : `"${hostOf(creds.server)}"`
      }`,
      details: creds.inCluster
        ? "Check KUBERNETES_SERVICE_HOST: it must be an address the API server's certificate lists"
        : `Set "server" in ${
          sourceLabel(creds)
        } to an address the certificate lists, or "tls-server-name" to one of its names`,
    }),
  },
  {
    codes: ["Expired", "NotValidYet", "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"],
    explain: () => ({
      problem: "its certificate has expired or is not valid yet",
      details: "Renew the API server's certificate, or set this node's clock right",
    }),
  },
  {
    codes: [
      "UnknownIssuer",
      "SELF_SIGNED_CERT_IN_CHAIN",
      "DEPTH_ZERO_SELF_SIGNED_CERT",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
      "UNABLE_TO_GET_ISSUER_CERT",
      "BadSignature",
      "CaUsedAsEndEntity",
    ],
    explain: (creds) => ({
      problem: creds.caPem
        ? `its certificate is not signed by ${caPhrase(creds)}`
        : `its certificate is not signed by a certificate authority this node trusts, and ${
          sourceLabel(creds)
        } names none`,
      details: creds.inCluster
        ? `The service account's ca.crt does not belong to the API server at ${creds.server}: check KUBERNETES_SERVICE_HOST`
        : `Put the cluster's CA certificate in "certificate-authority-data" of ${
          sourceLabel(creds)
        } (multus install copies the service account's ca.crt there), or fix "server" if it is not this cluster's API server`,
    }),
  },
  {
    codes: ["BadEncoding", "BadDer", "UnsupportedSignatureAlgorithm"],
    explain: (creds) => ({
      problem: "its certificate cannot be decoded or uses an unsupported algorithm",
      details: `Check the certificate the API server presents (openssl s_client -connect ${
        hostPortOf(creds.server)
      })`,
    }),
  },
  {
    codes: ["received fatal alert"],
    explain: (creds) => ({
      problem: "it refused the TLS handshake",
      details: creds.certPem
        ? `Check the client certificate and key in ${
          sourceLabel(creds)
        }, and that "server" is this cluster's API server`
        : `Check that "server" in ${sourceLabel(creds)} is this cluster's API server`,
    }),
  },
];

/**
 * Explains a handshake failure with the API server; undefined when `text` is not one.
 *
 * @param text The transport's error text.
 * @param creds The credentials in use (where the CA and the client certificate came from).
 */
export function explainHandshakeFailure(
  text: string,
  creds: KubeCredentials,
): TlsProblem | undefined {
  for (const known of HANDSHAKE) {
    const found = known.codes.find((c) => text.includes(c));
    if (found === undefined) continue;
    // An alert is named after the colon: "received fatal alert: HandshakeFailure".
    const escaped = found.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    const code = new RegExp(`${escaped}(: [A-Z]\\w+)?`).exec(text)![0];
    const { problem, details } = known.explain(creds);
    return {
      what: `${connectionLabel(creds)}: ${problem} (${code})`,
      details,
      ours: false,
    };
  }
  if (!/certificate|CERT|tls|ssl|handshake/i.test(text)) return undefined;
  return {
    what: `${connectionLabel(creds)}: ${text}`,
    details: `Check the certificate authority, "tls-server-name" and "server" in ${
      sourceLabel(creds)
    }`,
    ours: false,
  };
}

/** Which of our TLS settings a client set-up failure is about. */
export type TlsSetting = "ca" | "client" | "server-name";

/**
 * Explains why the TLS client could not be set up from our own settings: a CA or client
 * certificate that is not a certificate, a key that is not a key or not the certificate's.
 *
 * @param text The error text of the set-up.
 * @param setting The setting found at fault.
 */
export function explainSetupFailure(
  text: string,
  setting: TlsSetting,
  creds: KubeCredentials,
): TlsProblem {
  const code = /KeyMismatch|BadEncoding|InvalidByte|UnsupportedCertVersion|\w+Error\b/.exec(text)
    ?.[0] ?? text.split(":")[0];
  const at = `cannot use ${sourceLabel(creds)}`;
  if (setting === "ca") {
    return {
      what: `${at}: ${caPhrase(creds)} is not a valid certificate (${code})`,
      details: creds.inCluster
        ? 'The service account\'s ca.crt is damaged: check the mount, or set "kubeconfig" in the multus configuration'
        : `Replace it with the cluster's CA certificate in PEM form (/etc/kubernetes/pki/ca.crt on a control-plane node, base64-encoded in "certificate-authority-data"); multus install writes it from the service account`,
      ours: true,
    };
  }
  if (setting === "server-name") {
    return {
      what:
        `${at}: "tls-server-name" "${creds.tlsServerName}" is an IP address, which cannot be verified as a server name`,
      details:
        `Set "tls-server-name" to a DNS name the API server's certificate lists, or remove it (the address in "server" is verified)`,
      ours: true,
    };
  }
  const cert = creds.origins?.cert
    ? `the client certificate in ${creds.origins.cert}`
    : "the client certificate";
  const key = creds.origins?.key ? `the client key in ${creds.origins.key}` : "the client key";
  if (/KeyMismatch/.test(text)) {
    return {
      what: `${at}: ${key} does not belong to ${cert}`,
      details: "Use the key the client certificate was issued for",
      ours: true,
    };
  }
  if (/private key|\bkey\b/i.test(text)) {
    return {
      what: `${at}: ${key} cannot be read as an RSA, ECDSA or Ed25519 key`,
      details: "Replace it with the PEM private key of the client certificate",
      ours: true,
    };
  }
  return {
    what: `${at}: ${cert} is not a valid certificate (${code})`,
    details: "Replace it with the PEM certificate issued for this client",
    ours: true,
  };
}

/** `kubeconfig "<path>"`, or the in-cluster service account. */
export function sourceLabel(creds: KubeCredentials): string {
  return creds.inCluster
    ? `the in-cluster service account (${creds.source})`
    : `kubeconfig "${creds.source}"`;
}

function connectionLabel(creds: KubeCredentials): string {
  return `the TLS connection to the API server at ${creds.server} (from ${
    sourceLabel(creds)
  }) failed`;
}

function caPhrase(creds: KubeCredentials): string {
  return creds.origins?.ca
    ? `the certificate authority in ${creds.origins.ca}`
    : "the configured certificate authority";
}

function hostOf(server: string): string {
  try {
    return new URL(server).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return server;
  }
}

function hostPortOf(server: string): string {
  try {
    const url = new URL(server);
    return `${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`;
  } catch {
    return server;
  }
}
