import assert from "node:assert/strict";
import { parseNetworkConfig } from "../../cni/network_config.ts";
import { compareNetworks } from "./hotplug.ts";
import type { CachedDelegate } from "../plan/delegate.ts";
import { parseSelection } from "../plan/selection.ts";
import { selectionKey } from "../plan/selection_key.ts";

const config = parseNetworkConfig('{"cniVersion":"1.0.0","name":"n","type":"macvlan"}', "test");

function select(value: string) {
  return parseSelection(value, { defaultNamespace: "default", where: "test" });
}

/** Delegates as ADD cached them for `value` (after the default network). */
function attached(value: string): CachedDelegate[] {
  const master: CachedDelegate = { name: "cluster", config, ifName: "eth0", isMaster: true };
  return [
    master,
    ...select(value).map((s, i) => ({
      name: `${s.namespace}/${s.name}`,
      config,
      ifName: s.interface ?? `net${i + 1}`,
      isMaster: false,
      selection: selectionKey(s),
    })),
  ];
}

Deno.test("compareNetworks() attaches new elements, detaches removed and changed ones, leaves the rest", () => {
  const before = attached("blue,green@data0,red");
  const changes = compareNetworks(before, select("blue, red"));
  assert.deepEqual(changes.attach, []);
  assert.deepEqual(changes.detach.map((d) => d.ifName), ["data0"]);

  const json = compareNetworks(
    before,
    select(
      '[{"name":"blue"},{"name":"green","interface":"data1"},{"name":"red","ips":["10.1.1.1/24"]},{"name":"yellow"}]',
    ),
  );
  // green changed its interface, red asks for an address now: both go and come again.
  assert.deepEqual(json.detach.map((d) => d.name), ["default/green", "default/red"]);
  assert.deepEqual(json.attach.map((s) => `${s.name}:${s.interface ?? ""}`), [
    "green:data1",
    "red:",
    "yellow:",
  ]);
});

Deno.test("compareNetworks() matches the short and the JSON form, counts repeated networks, and never touches the default network or the configuration's networks", () => {
  const before = attached("blue,blue");
  const defaultNetwork: CachedDelegate = {
    name: "kube-system/extra",
    config,
    ifName: "net9",
    isMaster: false,
  };
  before.push(defaultNetwork);
  assert.deepEqual(compareNetworks(before, select('[{"name":"blue"},{"name":"blue"}]')), {
    detach: [],
    attach: [],
  });
  const one = compareNetworks(before, select("blue"));
  assert.deepEqual(one.detach.map((d) => d.ifName), ["net2"]);
  assert.deepEqual(one.attach, []);
  const none = compareNetworks(before, []);
  assert.deepEqual(none.detach.map((d) => d.ifName), ["net1", "net2"]);
});
