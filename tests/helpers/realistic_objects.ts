/**
 * @module
 * Pods and NetworkAttachmentDefinitions as a real cluster stores them (a Deployment's pod,
 * running, with its managed fields, probes, projected service-account volume and Multus
 * annotations), built and schema-checked with kubernetes-models. For tests and benchmarks
 * that must not flatter a cache with toy objects.
 */

import { Pod as PodModel } from "kubernetes-models/v1/Pod";
import type { NetworkAttachmentDefinition, Pod } from "../../src/k8s/types.ts";

/** Options of {@linkcode realisticPod}. */
export interface RealisticPodOptions {
  name: string;
  namespace: string;
  nodeName: string;
  /** Distinguishes the pod's addresses and ids (default 0). */
  index?: number;
  /** Extra NADs asked for in `k8s.v1.cni.cncf.io/networks` (default: one). */
  networks?: string[];
}

const STAMP = "2026-03-02T10:15:42Z";

/** A running Deployment pod with the fields kube-apiserver returns (~8 KB of JSON). */
export function realisticPod(options: RealisticPodOptions): Pod {
  const i = options.index ?? 0;
  const ip = `10.244.${(i >> 8) & 255}.${i & 255}`;
  const app = options.name.replace(/-[a-z0-9]+-[a-z0-9]+$/, "");
  const hash = "7c9f8d6b5d";
  const uid = crypto.randomUUID();
  const networks = options.networks ?? ["macvlan-conf"];
  const model = new PodModel({
    metadata: {
      name: options.name,
      generateName: `${app}-${hash}-`,
      namespace: options.namespace,
      uid,
      creationTimestamp: STAMP,
      labels: { app, "pod-template-hash": hash, "app.kubernetes.io/part-of": "shop" },
      annotations: {
        "k8s.v1.cni.cncf.io/networks": networks.join(","),
        "k8s.v1.cni.cncf.io/network-status": JSON.stringify(
          [{ name: "cbr0", interface: "eth0", ips: [ip], mac: "0a:58:0a:f4:00:05", default: true }]
            .concat(networks.map((n, k) => ({
              name: `${options.namespace}/${n}`,
              interface: `net${k + 1}`,
              ips: [`192.168.${k}.${i & 255}`],
              mac: `02:42:c0:a8:${k.toString(16).padStart(2, "0")}:05`,
              default: false,
            }))),
          null,
          "    ",
        ),
        "kubectl.kubernetes.io/restartedAt": STAMP,
      },
      ownerReferences: [{
        apiVersion: "apps/v1",
        kind: "ReplicaSet",
        name: `${app}-${hash}`,
        uid: crypto.randomUUID(),
        controller: true,
        blockOwnerDeletion: true,
      }],
      managedFields: [
        {
          manager: "kube-controller-manager",
          operation: "Update",
          apiVersion: "v1",
          time: STAMP,
          fieldsType: "FieldsV1",
          fieldsV1: {
            "f:metadata": {
              "f:annotations": { ".": {}, "f:k8s.v1.cni.cncf.io/networks": {} },
              "f:generateName": {},
              "f:labels": { ".": {}, "f:app": {}, "f:pod-template-hash": {} },
              "f:ownerReferences": { ".": {}, [`k:{"uid":"${uid}"}`]: {} },
            },
            "f:spec": {
              "f:containers": {
                'k:{"name":"app"}': {
                  ".": {},
                  "f:env": { ".": {}, 'k:{"name":"LOG_LEVEL"}': { ".": {}, "f:name": {} } },
                  "f:image": {},
                  "f:imagePullPolicy": {},
                  "f:livenessProbe": { ".": {}, "f:httpGet": { ".": {}, "f:path": {} } },
                  "f:name": {},
                  "f:ports": { ".": {}, 'k:{"containerPort":8080,"protocol":"TCP"}': {} },
                  "f:resources": { ".": {}, "f:limits": {}, "f:requests": {} },
                },
              },
              "f:dnsPolicy": {},
              "f:restartPolicy": {},
              "f:schedulerName": {},
              "f:securityContext": {},
              "f:terminationGracePeriodSeconds": {},
            },
          },
        },
        {
          manager: "kubelet",
          operation: "Update",
          apiVersion: "v1",
          time: STAMP,
          fieldsType: "FieldsV1",
          subresource: "status",
          fieldsV1: {
            "f:status": {
              "f:conditions": {
                'k:{"type":"ContainersReady"}': { ".": {}, "f:status": {}, "f:type": {} },
                'k:{"type":"Initialized"}': { ".": {}, "f:status": {}, "f:type": {} },
                'k:{"type":"Ready"}': { ".": {}, "f:status": {}, "f:type": {} },
              },
              "f:containerStatuses": {},
              "f:hostIP": {},
              "f:phase": {},
              "f:podIP": {},
              "f:podIPs": { ".": {}, [`k:{"ip":"${ip}"}`]: { ".": {}, "f:ip": {} } },
              "f:startTime": {},
            },
          },
        },
      ],
    },
    spec: {
      nodeName: options.nodeName,
      serviceAccountName: "default",
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
      schedulerName: "default-scheduler",
      terminationGracePeriodSeconds: 30,
      enableServiceLinks: true,
      preemptionPolicy: "PreemptLowerPriority",
      priority: 0,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
      containers: [{
        name: "app",
        image: `registry.example.com/shop/${app}:1.42.3`,
        imagePullPolicy: "IfNotPresent",
        ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
        env: [
          { name: "LOG_LEVEL", value: "info" },
          {
            name: "POD_NAME",
            valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } },
          },
          {
            name: "POD_NAMESPACE",
            valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } },
          },
          { name: "DATABASE_URL", valueFrom: { secretKeyRef: { name: `${app}-db`, key: "url" } } },
        ],
        resources: {
          requests: { cpu: "100m", memory: "128Mi" },
          limits: { cpu: "500m", memory: "512Mi" },
        },
        livenessProbe: {
          httpGet: { path: "/healthz", port: 8080, scheme: "HTTP" },
          initialDelaySeconds: 10,
          periodSeconds: 10,
          timeoutSeconds: 1,
          successThreshold: 1,
          failureThreshold: 3,
        },
        readinessProbe: {
          httpGet: { path: "/ready", port: 8080, scheme: "HTTP" },
          periodSeconds: 5,
          timeoutSeconds: 1,
          successThreshold: 1,
          failureThreshold: 3,
        },
        volumeMounts: [{
          name: "kube-api-access-x7k2p",
          mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
          readOnly: true,
        }],
        terminationMessagePath: "/dev/termination-log",
        terminationMessagePolicy: "File",
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
      }],
      volumes: [{
        name: "kube-api-access-x7k2p",
        projected: {
          defaultMode: 420,
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
            { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
            {
              downwardAPI: {
                items: [{
                  path: "namespace",
                  fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" },
                }],
              },
            },
          ],
        },
      }],
      tolerations: [
        {
          key: "node.kubernetes.io/not-ready",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
        {
          key: "node.kubernetes.io/unreachable",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
      ],
    },
    status: {
      phase: "Running",
      qosClass: "Burstable",
      hostIP: "172.18.0.3",
      hostIPs: [{ ip: "172.18.0.3" }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: STAMP,
      conditions: [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
      ]
        .map((type) => ({ type, status: "True", lastTransitionTime: STAMP })),
      containerStatuses: [{
        name: "app",
        ready: true,
        started: true,
        restartCount: 0,
        image: `registry.example.com/shop/${app}:1.42.3`,
        imageID:
          `registry.example.com/shop/${app}@sha256:9b1f4c3e0a2d5b6c7d8e9f00112233445566778899aabbccddeeff0011223344`,
        containerID: `containerd://${crypto.randomUUID().replaceAll("-", "")}${i}`,
        state: { running: { startedAt: STAMP } },
        lastState: {},
      }],
    },
  });
  model.validate();
  return JSON.parse(JSON.stringify(model.toJSON())) as Pod;
}

/** A macvlan NetworkAttachmentDefinition with whereabouts IPAM, as users write them. */
export function realisticNad(
  name: string,
  namespace: string,
  index = 0,
): NetworkAttachmentDefinition {
  const config = {
    cniVersion: "0.3.1",
    name,
    type: "macvlan",
    master: "eth1",
    mode: "bridge",
    ipam: {
      type: "whereabouts",
      range: `192.168.${index & 255}.0/24`,
      exclude: [`192.168.${index & 255}.0/30`],
      gateway: `192.168.${index & 255}.1`,
    },
  };
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: {
      name,
      namespace,
      uid: crypto.randomUUID(),
      generation: 1,
      creationTimestamp: STAMP,
      annotations: {
        "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({
          apiVersion: "k8s.cni.cncf.io/v1",
          kind: "NetworkAttachmentDefinition",
          metadata: { annotations: {}, name, namespace },
          spec: { config: JSON.stringify(config) },
        }) + "\n",
      },
      managedFields: [{
        manager: "kubectl-client-side-apply",
        operation: "Update",
        apiVersion: "k8s.cni.cncf.io/v1",
        time: STAMP,
        fieldsType: "FieldsV1",
        fieldsV1: {
          "f:metadata": {
            "f:annotations": {
              ".": {},
              "f:kubectl.kubernetes.io/last-applied-configuration": {},
            },
          },
          "f:spec": { ".": {}, "f:config": {} },
        },
      }],
    },
    spec: { config: JSON.stringify(config, null, 2) },
  };
}
