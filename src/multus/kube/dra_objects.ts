/**
 * @module
 * Where the DRA objects of a pod are read: ResourceClaims (namespaced, one GET each) and the
 * ResourceSlices of one driver on one node (one LIST with field selectors). Behind a small
 * interface so that a long-lived process can answer from its own caches; the request's
 * implementation here reads the API once per claim and once per node and driver.
 */

import { K8sApiError } from "../../k8s/errors.ts";
import type { KubeClient } from "../../k8s/client.ts";
import {
  RESOURCE_SLICE_RESOURCE,
  type ResourceClaim,
  type ResourceSlice,
  resourceSliceListMismatch,
} from "../../k8s/types.ts";
import { ErrorCode } from "../../util/errors.ts";

/** Reads the DRA objects a pod's device networks need. */
export interface DraObjects {
  /**
   * The ResourceClaim `namespace/name`.
   *
   * @throws {K8sApiError} when it cannot be read (404 when it does not exist).
   */
  resourceClaim(namespace: string, name: string): Promise<ResourceClaim>;
  /**
   * The ResourceSlices of `driver` published for node `nodeName` (every node's when
   * `nodeName` is empty).
   *
   * @throws {K8sApiError} when they cannot be listed.
   */
  resourceSlices(nodeName: string, driver: string): Promise<ResourceSlice[]>;
}

/** {@linkcode DraObjects} read from the API server, each claim and each node/driver once. */
export class ApiDraObjects implements DraObjects {
  readonly #client: KubeClient;
  readonly #claims = new Map<string, Promise<ResourceClaim>>();
  readonly #slices = new Map<string, Promise<ResourceSlice[]>>();

  constructor(client: KubeClient) {
    this.#client = client;
  }

  resourceClaim(namespace: string, name: string): Promise<ResourceClaim> {
    const key = `${namespace}/${name}`;
    let read = this.#claims.get(key);
    if (!read) {
      read = this.#client.getResourceClaim(namespace, name);
      this.#claims.set(key, read);
    }
    return read;
  }

  resourceSlices(nodeName: string, driver: string): Promise<ResourceSlice[]> {
    const fieldSelector = sliceSelector(nodeName, driver);
    let read = this.#slices.get(fieldSelector);
    if (!read) {
      read = this.#listSlices(fieldSelector);
      this.#slices.set(fieldSelector, read);
    }
    return read;
  }

  async #listSlices(fieldSelector: string): Promise<ResourceSlice[]> {
    const list = await this.#client.list<unknown>(RESOURCE_SLICE_RESOURCE, { fieldSelector });
    const mismatch = resourceSliceListMismatch(list);
    if (mismatch) {
      throw new K8sApiError(
        `Cannot list resourceslices (fieldSelector "${fieldSelector}"): the API server answered with ${mismatch}`,
        {
          status: 200,
          reason: "InvalidResponse",
          verb: "list",
          path: "/apis/resource.k8s.io/v1/resourceslices",
          code: ErrorCode.Internal,
        },
      );
    }
    return list.items as ResourceSlice[];
  }
}

/**
 * The field selector of a node's slices of one driver: `spec.nodeName=<node>,spec.driver=<driver>`
 * (the driver alone without a node name, as Multus does).
 */
export function sliceSelector(nodeName: string, driver: string): string {
  return nodeName ? `spec.nodeName=${nodeName},spec.driver=${driver}` : `spec.driver=${driver}`;
}
