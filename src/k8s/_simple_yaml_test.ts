import assert from "node:assert/strict";
import { parseDocument } from "yaml";
import { parseSimpleYaml } from "./_simple_yaml.ts";

const MULTUS = `# Kubeconfig file for Multus CNI plugin.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://[fd00:10:96::1]:443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUI=
users:
- name: multus
  user:
    token: "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2ln"
contexts:
- name: multus-context
  context:
    cluster: local
    user: multus
current-context: multus-context
`;

const KUBEADM = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://192.168.1.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJU
    client-key-data: LS0tLS1CRUdJTiBSU0Eg
`;

const ACCEPTED = [
  MULTUS,
  KUBEADM,
  MULTUS.replaceAll("\n", "\r\n"),
  "a:\n  b: 'single'\n  c: \"\"\n  d:\n  e: true\n  f: false\n",
  "list:\n  - one\n  -   two\n  - k: v\n    k2: v2\n  -\n    nested: x\nafter: y\n",
  "key:\n- x\n- y\nz: w\n",
  "s: 1.2.3\nt: v1\nu: https://h:6443/path?x=y\n",
];

const FALLBACK = [
  "a: &x 1\nb: *x\n",
  "a: |\n  text\n",
  "a: >-\n  text\n",
  "a: 'it''s'\n",
  'a: "esc\\n"\n',
  "a: 1\n",
  "a: null\n",
  "a: yes # comment\n",
  "a: {b: c}\n",
  "a: [b, c]\n",
  "a: b\na: c\n",
  "---\na: b\n",
  "a: plain\n  continued\n",
  "? complex\n: key\n",
  '"quoted key": v\n',
  "a:\tb\n",
  "  indented: root\n",
  "a: !!str tagged\n",
];

Deno.test("parseSimpleYaml() equals yaml on kubeconfigs", () => {
  for (const text of ACCEPTED) {
    const simple = parseSimpleYaml(text);
    assert.notEqual(simple, undefined, text);
    assert.deepEqual(simple, parseDocument(text).toJS(), text);
  }
});

Deno.test("parseSimpleYaml() leaves anything else to yaml", () => {
  for (const text of FALLBACK) assert.equal(parseSimpleYaml(text), undefined, text);
});

Deno.test("parseSimpleYaml() never disagrees with yaml on mutated kubeconfigs", () => {
  const tricky = [" ", ":", "#", "-", "'", '"', "\t", "\n", "{", "&", "!", "0", ".", "\\", "?"];
  let seed = 5;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let accepted = 0;
  for (let i = 0; i < 3000; i++) {
    let text = i % 2 ? MULTUS : KUBEADM;
    for (let edits = 1 + random(3); edits > 0; edits--) {
      const at = random(text.length);
      const ch = tricky[random(tricky.length)];
      text = random(3) === 0
        ? text.slice(0, at) + text.slice(at + 1)
        : text.slice(0, at) + ch + text.slice(at);
    }
    const simple = parseSimpleYaml(text);
    if (simple === undefined) continue;
    accepted++;
    const doc = parseDocument(text);
    assert.equal(doc.errors.length, 0, `accepted invalid YAML:\n${text}`);
    assert.deepEqual(simple, doc.toJS(), text);
  }
  assert.ok(accepted > 100, `only ${accepted} mutated inputs were accepted`);
});
