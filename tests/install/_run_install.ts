/**
 * @module
 * Test entry: runs `multus install` with this process's arguments and exits with its status.
 * Used until the tests can go through `scripts/dev-multus install` (src/main.ts) everywhere.
 */

import { runInstall } from "../../src/install/main.ts";

Deno.exit(await runInstall(Deno.args));
