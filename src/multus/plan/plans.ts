/**
 * @module
 * What ADD must do for a pod (the delegates, and what runs after they succeed), what it
 * attached, and what a DEL without scratch cache can rebuild: made by the planners of both
 * modes, used by the commands.
 */

import type { CniResult } from "../../cni/result.ts";
import type { PodIdentity } from "../config/invocation.ts";
import type { Delegate } from "./delegate.ts";

/** A delegate attached by ADD, with its result. */
export interface AttachedNetwork {
  delegate: Delegate & { ifName: string; isMaster: boolean };
  result: CniResult;
  /** The device-info (spec 1.1.0) of the device handed to the delegate, when known. */
  deviceInfo?: unknown;
}

/** What ADD must do for this pod. */
export interface AddPlan {
  delegates: Delegate[];
  /** The pod, with its UID from the API when it was looked up. */
  pod?: PodIdentity;
  /** Runs after every delegate succeeded (network-status); a failure rolls ADD back. */
  publish?: (attached: AttachedNetwork[]) => Promise<void>;
  /** Extra work that must not delay ADD (events); awaited with a short cap at the end. */
  background?: (attached: AttachedNetwork[]) => Promise<void>;
  /** Set when ADD must succeed without attaching anything (the pod no longer exists). */
  emptyResult?: boolean;
}

/** The networks a DEL without a readable scratch cache can rebuild. */
export interface DelRebuild {
  delegates: Delegate[];
  /**
   * Set when the pod's own networks may be missing because the API server could not be asked
   * (a retry later may find them): what went wrong.
   */
  incomplete?: string;
}
