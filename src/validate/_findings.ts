/**
 * @module
 * Findings of `multus validate`: what is wrong (or may be), where, and what to do; collected
 * in a {@linkcode Report} and printed as text lines or as JSON.
 */

import { errorMessage } from "../util/errors.ts";
import { CniError, ConfigError } from "../cni/errors.ts";

/** How bad a finding is: an error fails ADD; a warning may surprise but does not. */
export type Severity = "error" | "warning";

/** One problem found. */
export interface Finding {
  severity: Severity;
  /** The file the problem is in (`<stdin>` for standard input). */
  file: string;
  /** Where in the file: a key path, an object and field, or a line and column. */
  path: string;
  /** What is wrong. */
  message: string;
  /** What the user can do ("" when there is nothing more to say). */
  hint: string;
}

/** A place in an input: the file, the object in it (if any) and the path inside that. */
export interface Where {
  file: string;
  /** The Kubernetes object, e.g. `Pod default/web` (absent for plain config files). */
  object?: string;
  /** Key path inside the file or object ("" for the whole thing). */
  path: string;
}

/** Options of {@linkcode Report.error} and {@linkcode Report.warning}. */
export interface FindingOptions {
  /** What the user can do. */
  hint?: string;
}

/** Returns `where` with `sub` appended to its path (`a` + `b` → `a.b`; `[0]` is glued). */
export function within(where: Where, sub: string): Where {
  if (sub === "") return where;
  if (where.path === "") return { ...where, path: sub };
  const glue = sub.startsWith("[") ? "" : ".";
  return { ...where, path: `${where.path}${glue}${sub}` };
}

/** Collects findings in the order they are found. */
export class Report {
  #findings: Finding[] = [];
  #seen = new Set<string>();

  /** Adds an error (something that fails ADD). Identical findings are kept once. */
  error(where: Where, message: string, options: FindingOptions = {}): void {
    this.#add("error", where, message, options);
  }

  /** Adds a warning (something that does not fail ADD but is likely wrong). */
  warning(where: Where, message: string, options: FindingOptions = {}): void {
    this.#add("warning", where, message, options);
  }

  /**
   * Adds a finding for a thrown error: its message, and its CNI `details` as the hint unless
   * `options.hint` is given. A ConfigError's `field` is appended to the path when
   * `options.field` is true.
   */
  fromError(
    where: Where,
    err: unknown,
    options: FindingOptions & { severity?: Severity; field?: boolean } = {},
  ): void {
    const message = errorMessage(err);
    const hint = options.hint ?? (err instanceof CniError ? err.details : undefined);
    const at = options.field && err instanceof ConfigError ? within(where, err.field) : where;
    this.#add(options.severity ?? "error", at, message, { hint });
  }

  /** Every finding so far. */
  get findings(): readonly Finding[] {
    return this.#findings;
  }

  /** Number of errors. */
  get errors(): number {
    return this.#findings.filter((f) => f.severity === "error").length;
  }

  /** Number of warnings. */
  get warnings(): number {
    return this.#findings.filter((f) => f.severity === "warning").length;
  }

  #add(severity: Severity, where: Where, message: string, options: FindingOptions): void {
    const finding: Finding = {
      severity,
      file: where.file,
      path: [where.object ?? "", where.path].filter((p) => p !== "").join(" "),
      message: oneLine(message),
      hint: oneLine(options.hint ?? ""),
    };
    const key = JSON.stringify(finding);
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#findings.push(finding);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** What was checked, for the summary line. */
export interface Checked {
  multusConfigs: number;
  nads: number;
  pods: number;
  networkConfigs: number;
  /** ResourceClaims, ResourceClaimTemplates, ResourceSlices and DeviceClasses. */
  draObjects: number;
  ignored: number;
}

/** The findings as text: one line per finding, a hint line under it, and a summary line. */
export function formatText(report: Report, checked: Checked): string {
  const lines: string[] = [];
  for (const f of report.findings) {
    const where = f.path === "" ? "" : ` ${f.path}:`;
    lines.push(`${f.severity} ${f.file}:${where} ${f.message}`);
    if (f.hint !== "") lines.push(`  hint: ${f.hint}`);
  }
  const counted: string[] = [];
  const count = (n: number, one: string, many: string) => {
    if (n > 0) counted.push(`${n} ${n === 1 ? one : many}`);
  };
  count(checked.multusConfigs, "Multus config", "Multus configs");
  count(checked.nads, "NetworkAttachmentDefinition", "NetworkAttachmentDefinitions");
  count(checked.pods, "pod", "pods");
  count(checked.networkConfigs, "network config", "network configs");
  count(checked.draObjects, "DRA object", "DRA objects");
  const ignored = checked.ignored > 0
    ? `; ${checked.ignored} other object${checked.ignored === 1 ? "" : "s"} ignored`
    : "";
  const what = `checked ${counted.length > 0 ? counted.join(", ") : "nothing"}${ignored}`;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const verdict = report.errors > 0 ? "FAILED" : "OK";
  lines.push(
    `${verdict}: ${plural(report.errors, "error")}, ${
      plural(report.warnings, "warning")
    } (${what})`,
  );
  return lines.join("\n") + "\n";
}

/** The findings as JSON: `{"ok": bool, "findings": [...]}`. */
export function formatJson(report: Report): string {
  return JSON.stringify({ ok: report.errors === 0, findings: report.findings }, null, 2) + "\n";
}
