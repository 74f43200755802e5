import assert from "node:assert/strict";
import { KubeconfigError } from "./errors.ts";
import { inClusterCredentials, loadKubeconfig } from "./kubeconfig.ts";

const CA_PEM = "-----BEGIN CERTIFICATE-----\nQ0EtY2VydA==\n-----END CERTIFICATE-----\n";
const CA_FILE_PEM = "-----BEGIN CERTIFICATE-----\nRklMRS1jYQ==\n-----END CERTIFICATE-----\n";
const CERT_PEM = "-----BEGIN CERTIFICATE-----\nY2xpZW50\n-----END CERTIFICATE-----\n";
const CERT_FILE_PEM = "-----BEGIN CERTIFICATE-----\nZmlsZS1jbGllbnQ=\n-----END CERTIFICATE-----\n";
const KEY_PEM = "-----BEGIN EC PRIVATE KEY-----\na2V5\n-----END EC PRIVATE KEY-----\n";
const KEY_FILE_PEM = "-----BEGIN PRIVATE KEY-----\nZmlsZS1rZXk=\n-----END PRIVATE KEY-----\n";
const SECRET = "s3cr3t-t0ken-value";

/** Runs `fn`, expects it to reject with an instance of `type`, returns the error. */
async function rejects<T extends Error>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => T,
): Promise<T> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${err}`);
    return err;
  }
  throw new assert.AssertionError({ message: `expected a ${type.name} rejection` });
}

/** The kubeconfig Multus's thin_entrypoint writes. */
function multusKubeconfig(cluster: string, user: string): string {
  return `# Kubeconfig file for Multus CNI plugin.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
${cluster}
users:
- name: multus
  user:
${user}
contexts:
- name: multus-context
  context:
    cluster: local
    user: multus
current-context: multus-context
`;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kubeconfig-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function write(dir: string, name: string, text: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
  return path;
}

/**
 * Holds a write lease on `path` in another process (python3): until it is released, opening
 * the file blocks, as on a hung network mount. `release()` ends it and waits for the open
 * left behind to finish.
 */
async function holdLease(path: string): Promise<AsyncDisposable & { release(): Promise<void> }> {
  const script = [
    "import fcntl, os, signal, sys",
    // A lease break signals the holder with SIGIO: ignore it and keep the lease.
    "signal.signal(signal.SIGIO, signal.SIG_IGN)",
    "fd = os.open(sys.argv[1], os.O_RDONLY)",
    "fcntl.fcntl(fd, 1024, fcntl.F_WRLCK)  # F_SETLEASE",
    "print('held', flush=True)",
    "sys.stdin.read()",
  ].join("\n");
  const child = new Deno.Command("python3", {
    args: ["-c", script, path],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.equal(new TextDecoder().decode(value).trim(), "held", "the lease is held");
  reader.releaseLock();
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await child.stdin.close();
    await child.stdout.cancel();
    await child.status;
    // The open that was given up on returns now and closes the file; one more read of the
    // file goes through the same steps behind it.
    await Deno.readTextFile(path);
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { release, [Symbol.asyncDispose]: release };
}

/** Loads and expects a KubeconfigError; returns it after checking no secret leaked. */
async function loadError(path: string): Promise<KubeconfigError> {
  const err = await rejects(() => loadKubeconfig(path), KubeconfigError);
  assert.deepEqual(err.code, 7);
  assert.deepEqual(err.file, path);
  assert.ok(!err.message.includes(SECRET), `secret in message: ${err.message}`);
  assert.ok(!(err.details ?? "").includes(SECRET));
  return err;
}

Deno.test("loadKubeconfig() reads the kubeconfig Multus writes", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "multus.kubeconfig",
      multusKubeconfig(
        `    server: https://10.96.0.1:443/\n    certificate-authority-data: ${btoa(CA_PEM)}`,
        `    token: "${SECRET}"`,
      ),
    );
    assert.deepEqual(await loadKubeconfig(path), {
      server: "https://10.96.0.1:443",
      caPem: CA_PEM,
      token: SECRET,
      insecureSkipTlsVerify: false,
      source: path,
      origins: { ca: '"certificate-authority-data" of cluster "local"' },
    });
  });
});

Deno.test("loadKubeconfig() reads a JSON kubeconfig", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "config.json",
      JSON.stringify({
        "current-context": "c",
        contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
        clusters: [{
          name: "k",
          cluster: { server: "https://[fd00::1]:6443", "insecure-skip-tls-verify": true },
        }],
        users: [{ name: "u", user: { token: SECRET } }],
      }),
    );
    const creds = await loadKubeconfig(path);
    assert.deepEqual(creds.server, "https://[fd00::1]:6443");
    assert.deepEqual(creds.insecureSkipTlsVerify, true);
    assert.deepEqual(creds.token, SECRET);
    assert.deepEqual(creds.caPem, undefined);
  });
});

Deno.test("loadKubeconfig() reads YAML beyond the plain subset (flow mappings, anchors)", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      `current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters:
- name: k
  cluster: {server: "https://h:6443", certificate-authority-data: &ca ${btoa(CA_PEM)}}
users:
- name: u
  user:
    token: >-
      ${SECRET}
`,
    );
    const creds = await loadKubeconfig(path);
    assert.equal(creds.server, "https://h:6443");
    assert.equal(creds.caPem, CA_PEM);
    assert.equal(creds.token, SECRET);
  });
});

Deno.test("loadKubeconfig() counts insecure-skip-tls-verify only when exactly true", async () => {
  await withDir(async (dir) => {
    for (const [value, expected] of [["true", true], ['"true"', false], ["yes", false]] as const) {
      const path = await write(
        dir,
        `k-${expected}-${value.length}`,
        multusKubeconfig(
          `    server: https://h:6443\n    insecure-skip-tls-verify: ${value}`,
          `    token: t`,
        ),
      );
      assert.deepEqual((await loadKubeconfig(path)).insecureSkipTlsVerify, expected, value);
    }
  });
});

Deno.test("loadKubeconfig() refuses insecure-skip-tls-verify together with a CA, as client-go does", async () => {
  await withDir(async (dir) => {
    await write(dir, "ca.crt", CA_PEM);
    for (
      const [key, value] of [
        ["certificate-authority-data", btoa(CA_PEM)],
        ["certificate-authority", "ca.crt"],
        // Refused before the file is read, as client-go does.
        ["certificate-authority", "missing.crt"],
      ]
    ) {
      const path = await write(
        dir,
        `k-${value.length}`,
        multusKubeconfig(
          `    server: https://h:6443\n    insecure-skip-tls-verify: true\n    ${key}: ${value}`,
          "    token: t",
        ),
      );
      const err = await loadError(path);
      assert.deepEqual(
        err.message,
        `Cannot use kubeconfig "${path}": cluster "local" sets both "insecure-skip-tls-verify" and "${key}": specifying a root certificates file with the insecure flag is not allowed`,
      );
      assert.deepEqual(err.field, 'clusters["local"].cluster.insecure-skip-tls-verify');
      assert.match(err.details ?? "", /Remove "insecure-skip-tls-verify"/);
    }
  });
});

Deno.test("loadKubeconfig() reads tls-server-name", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        `    server: https://192.0.2.1:6443\n    tls-server-name: kubernetes.default.svc\n    certificate-authority-data: ${
          btoa(CA_PEM)
        }`,
        "    token: t",
      ),
    );
    assert.deepEqual((await loadKubeconfig(path)).tlsServerName, "kubernetes.default.svc");
  });
});

Deno.test("loadKubeconfig() resolves relative file paths against the kubeconfig's folder", async () => {
  await withDir(async (dir) => {
    await write(dir, "conf/pki/ca.crt", CA_FILE_PEM);
    await write(dir, "conf/pki/client.crt", CERT_FILE_PEM);
    await write(dir, "conf/pki/client.key", KEY_FILE_PEM);
    const path = await write(
      dir,
      "conf/kubeconfig",
      multusKubeconfig(
        "    server: https://h:6443\n    certificate-authority: pki/ca.crt",
        "    client-certificate: pki/client.crt\n    client-key: ./pki/client.key",
      ),
    );
    const creds = await loadKubeconfig(path);
    assert.deepEqual(creds.caPem, CA_FILE_PEM);
    assert.deepEqual(creds.certPem, CERT_FILE_PEM);
    assert.deepEqual(creds.keyPem, KEY_FILE_PEM);
    assert.deepEqual(creds.token, undefined);
  });
});

Deno.test("loadKubeconfig() reads absolute file paths", async () => {
  await withDir(async (dir) => {
    const ca = await write(dir, "elsewhere/ca.crt", CA_FILE_PEM);
    const path = await write(
      dir,
      "conf/kubeconfig",
      multusKubeconfig(
        `    server: https://h:6443\n    certificate-authority: ${ca}`,
        "    token: t",
      ),
    );
    assert.deepEqual((await loadKubeconfig(path)).caPem, CA_FILE_PEM);
  });
});

Deno.test("loadKubeconfig() prefers *-data over the file, as client-go does", async () => {
  await withDir(async (dir) => {
    await write(dir, "ca.crt", CA_FILE_PEM);
    await write(dir, "client.crt", CERT_FILE_PEM);
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        `    server: https://h:6443\n    certificate-authority: ca.crt\n    certificate-authority-data: ${
          btoa(CA_PEM)
        }`,
        // the key file does not exist: with data present it is never read
        `    client-certificate: client.crt\n    client-certificate-data: ${
          btoa(CERT_PEM)
        }\n    client-key: missing.key\n    client-key-data: ${btoa(KEY_PEM)}`,
      ),
    );
    const creds = await loadKubeconfig(path);
    assert.deepEqual(creds.caPem, CA_PEM);
    assert.deepEqual(creds.certPem, CERT_PEM);
    assert.deepEqual(creds.keyPem, KEY_PEM);
  });
});

Deno.test("loadKubeconfig() accepts base64 data split over lines", async () => {
  await withDir(async (dir) => {
    const b64 = btoa(CA_PEM).replace(/(.{16})/g, "$1\n      ");
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        `    server: https://h:6443\n    certificate-authority-data: >-\n      ${b64}`,
        "    token: t",
      ),
    );
    assert.deepEqual((await loadKubeconfig(path)).caPem, CA_PEM);
  });
});

Deno.test("loadKubeconfig() reads tokenFile relative to the kubeconfig, trimmed", async () => {
  await withDir(async (dir) => {
    await write(dir, "sa/token", `${SECRET}\n`);
    const path = await write(
      dir,
      "k",
      multusKubeconfig("    server: https://h:6443", "    tokenFile: sa/token"),
    );
    assert.deepEqual((await loadKubeconfig(path)).token, SECRET);
  });
});

Deno.test("loadKubeconfig() also accepts token-file", async () => {
  await withDir(async (dir) => {
    const tokenPath = await write(dir, "token", SECRET);
    const path = await write(
      dir,
      "k",
      multusKubeconfig("    server: https://h:6443", `    token-file: ${tokenPath}`),
    );
    assert.deepEqual((await loadKubeconfig(path)).token, SECRET);
  });
});

Deno.test("loadKubeconfig() prefers token over tokenFile, as client-go does", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        "    server: https://h:6443",
        `    token: inline-token\n    tokenFile: does-not-exist`,
      ),
    );
    assert.deepEqual((await loadKubeconfig(path)).token, "inline-token");
  });
});

Deno.test("loadKubeconfig() re-reads the token file on every load (rotation)", async () => {
  await withDir(async (dir) => {
    const tokenPath = await write(dir, "token", "first-token");
    const path = await write(
      dir,
      "k",
      multusKubeconfig("    server: https://h:6443", "    tokenFile: token"),
    );
    assert.deepEqual((await loadKubeconfig(path)).token, "first-token");
    await Deno.writeTextFile(tokenPath, "second-token\n");
    assert.deepEqual((await loadKubeconfig(path)).token, "second-token");
  });
});

Deno.test("loadKubeconfig() rejects an empty or missing token file, naming it", async () => {
  await withDir(async (dir) => {
    const tokenPath = await write(dir, "token", "  \n");
    const path = await write(
      dir,
      "k",
      multusKubeconfig("    server: https://h:6443", "    tokenFile: token"),
    );
    let err = await loadError(path);
    assert.ok(err.message.includes(`"${tokenPath}"`), err.message);
    assert.ok(err.message.includes("is empty"), err.message);
    assert.deepEqual(err.field, 'users["multus"].user.tokenFile');
    await Deno.remove(tokenPath);
    err = await loadError(path);
    assert.ok(err.message.includes("does not exist"), err.message);
  });
});

Deno.test("loadKubeconfig() refuses exec users without leaking their settings", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        "    server: https://h:6443",
        `    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n      args: ["eks", "get-token"]\n      env:\n      - name: AWS_SECRET\n        value: ${SECRET}`,
      ),
    );
    const err = await loadError(path);
    assert.deepEqual(
      err.message,
      `Cannot use kubeconfig "${path}": user "multus" uses the "exec" authentication method, which this plugin does not support; use a token or client certificate`,
    );
    assert.deepEqual(err.field, 'users["multus"].user.exec');
  });
});

Deno.test("loadKubeconfig() refuses auth-provider users, naming the provider only", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        "    server: https://h:6443",
        `    auth-provider:\n      name: oidc\n      config:\n        id-token: ${SECRET}\n        refresh-token: ${SECRET}`,
      ),
    );
    const err = await loadError(path);
    assert.ok(
      err.message.includes('uses the "auth-provider" authentication method ("oidc")'),
      err.message,
    );
    assert.ok(err.message.includes("use a token or client certificate"), err.message);
  });
});

Deno.test("loadKubeconfig() refuses username/password without quoting the password", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        "    server: https://h:6443",
        `    username: admin\n    password: ${SECRET}`,
      ),
    );
    const err = await loadError(path);
    assert.ok(err.message.includes('"username/password" authentication method'), err.message);
  });
});

Deno.test("loadKubeconfig() uses a static token over an exec plugin, as client-go does", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        "    server: https://h:6443",
        `    token: ${SECRET}\n    exec:\n      command: helper`,
      ),
    );
    assert.deepEqual((await loadKubeconfig(path)).token, SECRET);
  });
});

Deno.test("loadKubeconfig() refuses proxy-url", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        "    server: https://h:6443\n    proxy-url: http://proxy:3128",
        "    token: t",
      ),
    );
    const err = await loadError(path);
    assert.ok(err.message.includes('"proxy-url"'), err.message);
    assert.deepEqual(err.field, 'clusters["local"].cluster.proxy-url');
  });
});

Deno.test("loadKubeconfig() names a missing current-context, context, cluster or user", async () => {
  await withDir(async (dir) => {
    const base = multusKubeconfig("    server: https://h:6443", "    token: t");
    const cases: [string, string, string][] = [
      [
        base.replace("current-context: multus-context\n", ""),
        'it has no "current-context"',
        "current-context",
      ],
      [
        base.replace("current-context: multus-context", "current-context: other"),
        'context "other" named by "current-context" is not in "contexts"',
        "current-context",
      ],
      [
        base.replace("    cluster: local", "    cluster: remote"),
        'context "multus-context" names cluster "remote", which is not in "clusters"',
        'contexts["multus-context"].context.cluster',
      ],
      [
        base.replace("    user: multus", "    user: admin"),
        'context "multus-context" names user "admin", which is not in "users"',
        'contexts["multus-context"].context.user',
      ],
      [
        base.replace("    server: https://h:6443", "    insecure-skip-tls-verify: true"),
        'cluster "local" has no "server"',
        'clusters["local"].cluster.server',
      ],
      [
        base.replace("    server: https://h:6443", "    server: ftp://h"),
        'cluster "local" has server "ftp://h", which is not an http or https URL',
        'clusters["local"].cluster.server',
      ],
    ];
    for (const [i, [text, what, field]] of cases.entries()) {
      const path = await write(dir, `k${i}`, text);
      const err = await loadError(path);
      assert.deepEqual(err.message, `Cannot use kubeconfig "${path}": ${what}`);
      assert.deepEqual(err.field, field);
    }
  });
});

Deno.test("loadKubeconfig() allows a context without a user (anonymous)", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig("    server: https://h:6443", "    token: t").replace(
        "    user: multus\n",
        "",
      ),
    );
    const creds = await loadKubeconfig(path);
    assert.deepEqual(creds.token, undefined);
    assert.deepEqual(creds.certPem, undefined);
  });
});

Deno.test("loadKubeconfig() reports a missing kubeconfig file, saying that multus install writes it", async () => {
  await withDir(async (dir) => {
    const err = await loadError(`${dir}/nope`);
    assert.deepEqual(err.message, `Cannot read kubeconfig "${dir}/nope": the file does not exist`);
    assert.match(err.details ?? "", /"kubeconfig" in the multus configuration names this file/);
    assert.match(err.details ?? "", /multus install writes it/);
  });
});

Deno.test("loadKubeconfig() refuses a kubeconfig or a file it names that is a FIFO, a device or a directory, without hanging", async () => {
  await withDir(async (dir) => {
    const fifo = `${dir}/fifo`;
    const mkfifo = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mkfifo.success);
    const link = `${dir}/zero-link`;
    await Deno.symlink("/dev/zero", link);
    for (
      const [file, kind] of [
        [fifo, "a FIFO (named pipe)"],
        ["/dev/zero", "a character device"],
        [link, "a character device"],
        [dir, "a directory"],
      ]
    ) {
      let err = await loadError(file);
      assert.deepEqual(
        err.message,
        `Cannot read kubeconfig "${file}": it is ${kind}, not a regular file`,
      );
      const path = await write(
        dir,
        "k",
        multusKubeconfig(
          `    server: https://h:6443\n    certificate-authority-data: ${btoa(CA_PEM)}`,
          `    tokenFile: ${file}`,
        ),
      );
      err = await loadError(path);
      assert.deepEqual(
        err.message,
        `Cannot read "${file}" named by user "multus" in kubeconfig "${path}": it is ${kind}, not a regular file`,
      );
      assert.deepEqual(err.field, 'users["multus"].user.tokenFile');
    }
    const env = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };
    await Deno.symlink("/dev/zero", `${dir}/ca.crt`);
    const err = await rejects(() => inClusterCredentials(env, dir), KubeconfigError);
    assert.deepEqual(
      err.message,
      `Cannot use in-cluster credentials: cannot read "${dir}/ca.crt": it is a character device, not a regular file`,
    );
  });
});

Deno.test("loadKubeconfig() refuses files larger than 4 MiB without reading them", async () => {
  await withDir(async (dir) => {
    const big = `${dir}/big`;
    using file = await Deno.create(big);
    await file.truncate(4 * 1024 * 1024 + 1);
    const err = await loadError(big);
    assert.deepEqual(
      err.message,
      `Cannot read kubeconfig "${big}": it has 4194305 bytes, more than the 4194304 bytes a credential file may have`,
    );
  });
});

Deno.test("loadKubeconfig() gives up on a file whose open does not return (a file under a lease, like a hung mount)", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(`    server: https://h:6443`, "    token: t"),
    );
    await using holder = await holdLease(path);
    const err = await rejects(
      () => loadKubeconfig(path, { readTimeoutMs: 300 }),
      KubeconfigError,
    );
    assert.deepEqual(
      err.message,
      `Cannot read kubeconfig "${path}": reading it did not finish within 0.3 s (is it on a hung network mount, or held by another process?)`,
    );
    await holder.release();
  });
});

Deno.test("loadKubeconfig() reports invalid YAML by position, not by content", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      `users:\n- name: u\n  user:\n    token: "${SECRET}\n  bad: [`,
    );
    const err = await loadError(path);
    assert.ok(
      err.message.startsWith(`Cannot use kubeconfig "${path}": it is not valid YAML`),
      err.message,
    );
  });
});

Deno.test("loadKubeconfig() rejects a client certificate without a key", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        "    server: https://h:6443",
        `    client-certificate-data: ${btoa(CERT_PEM)}`,
      ),
    );
    const err = await loadError(path);
    assert.ok(err.message.includes("has a client certificate but no client key"), err.message);
  });
});

Deno.test("loadKubeconfig() rejects bad base64 and non-PEM data without quoting it", async () => {
  await withDir(async (dir) => {
    let path = await write(
      dir,
      "k1",
      multusKubeconfig(
        `    server: https://h:6443\n    certificate-authority-data: "${SECRET}!!"`,
        "    token: t",
      ),
    );
    let err = await loadError(path);
    assert.ok(
      err.message.includes('"certificate-authority-data" of cluster "local" is not valid base64'),
      err.message,
    );
    assert.deepEqual(err.field, 'clusters["local"].cluster.certificate-authority-data');

    path = await write(
      dir,
      "k2",
      multusKubeconfig(
        "    server: https://h:6443",
        `    client-certificate-data: ${btoa(CERT_PEM)}\n    client-key-data: ${btoa(SECRET)}`,
      ),
    );
    err = await loadError(path);
    assert.ok(
      err.message.includes('"client-key-data" of user "multus" is not a PEM private key'),
      err.message,
    );
  });
});

Deno.test("loadKubeconfig() names an unreadable certificate file", async () => {
  await withDir(async (dir) => {
    const path = await write(
      dir,
      "k",
      multusKubeconfig(
        "    server: https://h:6443\n    certificate-authority: pki/ca.crt",
        "    token: t",
      ),
    );
    const err = await loadError(path);
    assert.deepEqual(
      err.message,
      `Cannot read "${dir}/pki/ca.crt" named by cluster "local" in kubeconfig "${path}": the file does not exist`,
    );
    assert.deepEqual(err.field, 'clusters["local"].cluster.certificate-authority');
  });
});

Deno.test("inClusterCredentials() reads the service account", async () => {
  await withDir(async (dir) => {
    await write(dir, "ca.crt", CA_PEM);
    await write(dir, "token", `${SECRET}\n`);
    assert.deepEqual(
      await inClusterCredentials({
        KUBERNETES_SERVICE_HOST: "10.96.0.1",
        KUBERNETES_SERVICE_PORT: "443",
      }, dir),
      {
        server: "https://10.96.0.1:443",
        caPem: CA_PEM,
        token: SECRET,
        insecureSkipTlsVerify: false,
        source: dir,
        inCluster: true,
        origins: { ca: `"${dir}/ca.crt"` },
      },
    );
    const v6 = await inClusterCredentials(
      { KUBERNETES_SERVICE_HOST: "fd00:10:96::1", KUBERNETES_SERVICE_PORT: "443" },
      dir,
    );
    assert.deepEqual(v6.server, "https://[fd00:10:96::1]:443");
  });
});

Deno.test("inClusterCredentials() explains what is missing", async () => {
  await withDir(async (dir) => {
    let err = await rejects(() => inClusterCredentials({}, dir), KubeconfigError);
    assert.deepEqual(
      err.message,
      "Cannot use in-cluster credentials: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set",
    );
    const env = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };
    err = await rejects(() => inClusterCredentials(env, dir), KubeconfigError);
    assert.deepEqual(
      err.message,
      `Cannot use in-cluster credentials: cannot read "${dir}/ca.crt": the file does not exist`,
    );
    assert.match(err.details ?? "", /set "kubeconfig" in the multus configuration/);
    await write(dir, "ca.crt", CA_PEM);
    err = await rejects(() => inClusterCredentials(env, dir), KubeconfigError);
    assert.deepEqual(
      err.message,
      `Cannot use in-cluster credentials: cannot read "${dir}/token": the file does not exist`,
    );
  });
});
