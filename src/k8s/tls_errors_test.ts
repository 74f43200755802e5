import assert from "node:assert/strict";
import type { KubeCredentials } from "./kubeconfig.ts";
import { explainHandshakeFailure, explainSetupFailure } from "./tls_errors.ts";

const KUBECONFIG: KubeCredentials = {
  server: "https://10.0.0.1:6443",
  caPem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
  insecureSkipTlsVerify: false,
  source: "/etc/cni/net.d/multus.d/multus.kubeconfig",
  origins: { ca: '"certificate-authority-data" of cluster "local"' },
};

const IN_CLUSTER: KubeCredentials = {
  server: "https://10.96.0.1:443",
  caPem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
  token: "t",
  insecureSkipTlsVerify: false,
  source: "/var/run/secrets/kubernetes.io/serviceaccount",
  inCluster: true,
  origins: { ca: '"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"' },
};

Deno.test("explainHandshakeFailure() names the source, the server and the code of each known failure", () => {
  const cases: [string, KubeCredentials, string, RegExp][] = [
    [
      "invalid peer certificate: UnknownIssuer",
      IN_CLUSTER,
      'the TLS connection to the API server at https://10.96.0.1:443 (from the in-cluster service account (/var/run/secrets/kubernetes.io/serviceaccount)) failed: its certificate is not signed by the certificate authority in "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt" (UnknownIssuer)',
      /ca\.crt does not belong to the API server at https:\/\/10\.96\.0\.1:443/,
    ],
    [
      "invalid peer certificate: Expired",
      KUBECONFIG,
      'the TLS connection to the API server at https://10.0.0.1:6443 (from kubeconfig "/etc/cni/net.d/multus.d/multus.kubeconfig") failed: its certificate has expired or is not valid yet (Expired)',
      /clock/,
    ],
    [
      "certificate has expired: CERT_HAS_EXPIRED",
      KUBECONFIG,
      'the TLS connection to the API server at https://10.0.0.1:6443 (from kubeconfig "/etc/cni/net.d/multus.d/multus.kubeconfig") failed: its certificate has expired or is not valid yet (CERT_HAS_EXPIRED)',
      /Renew/,
    ],
    [
      "invalid peer certificate: NotValidForName",
      KUBECONFIG,
      'the TLS connection to the API server at https://10.0.0.1:6443 (from kubeconfig "/etc/cni/net.d/multus.d/multus.kubeconfig") failed: its certificate is not valid for "10.0.0.1" (NotValidForName)',
      /"tls-server-name"/,
    ],
    [
      "received fatal alert: HandshakeFailure",
      KUBECONFIG,
      'the TLS connection to the API server at https://10.0.0.1:6443 (from kubeconfig "/etc/cni/net.d/multus.d/multus.kubeconfig") failed: it refused the TLS handshake (received fatal alert: HandshakeFailure)',
      /is this cluster's API server/,
    ],
  ];
  for (const [text, creds, what, details] of cases) {
    const problem = explainHandshakeFailure(text, creds);
    assert.equal(problem?.what, what, text);
    assert.match(problem?.details ?? "", details, text);
    assert.equal(problem?.ours, false);
  }
});

Deno.test("explainHandshakeFailure() leaves failures that are not about TLS to the caller", () => {
  for (const text of ["tcp connect error: Connection refused (os error 111)", "dns error"]) {
    assert.equal(explainHandshakeFailure(text, KUBECONFIG), undefined, text);
  }
});

Deno.test("explainSetupFailure() says which of our settings is unusable", () => {
  const ca = explainSetupFailure("invalid peer certificate: BadEncoding", "ca", IN_CLUSTER);
  assert.equal(
    ca.what,
    'cannot use the in-cluster service account (/var/run/secrets/kubernetes.io/serviceaccount): the certificate authority in "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt" is not a valid certificate (BadEncoding)',
  );
  assert.match(ca.details, /set "kubeconfig" in the multus configuration/);
  assert.equal(ca.ours, true);
  const key = explainSetupFailure(
    "unexpected error: failed to parse private key as RSA, ECDSA, or EdDSA",
    "client",
    KUBECONFIG,
  );
  assert.equal(
    key.what,
    'cannot use kubeconfig "/etc/cni/net.d/multus.d/multus.kubeconfig": the client key cannot be read as an RSA, ECDSA or Ed25519 key',
  );
});
