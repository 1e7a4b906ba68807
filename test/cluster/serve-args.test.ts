/** `nexus-fast serve` cluster flags: --cluster needs --postgres, the other cluster flags need --cluster. */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/args.js";
import { runServe } from "../../src/cli/commands/serve.js";
import { startServer } from "../../src/server/index.js";

const io = { out: () => undefined, err: () => undefined };

describe("serve --cluster flags", () => {
  it("refuses --cluster without --postgres, and cluster options without --cluster", async () => {
    await expect(runServe(["--cluster", "redis://127.0.0.1:6379", "--memory"], io)).rejects.toThrow(
      UsageError,
    );
    await expect(runServe(["--cluster", "redis://127.0.0.1:6379"], io)).rejects.toThrow(
      /--cluster needs --postgres/,
    );
    await expect(runServe(["--memory", "--cluster-prefix", "x:"], io)).rejects.toThrow(
      /--cluster-prefix needs --cluster/,
    );
    await expect(runServe(["--memory", "--no-shared-cache"], io)).rejects.toThrow(
      /--no-shared-cache needs --cluster/,
    );
  });

  it("startServer refuses a cluster over a store that is not PostgreSQL", async () => {
    await expect(startServer({ port: 0, cluster: { redis: "redis://127.0.0.1:6379" } })).rejects.toThrow(
      /a cluster needs the PostgreSQL store/,
    );
  });
});
