// Child process for the tiered-store crash tests. Opens the store laid out under argv[2].root and either
//   - "move": moves one object and kills itself (SIGKILL: no cleanup, no flush, no close) at the named step, or
//   - "cycle": moves one object round the tiers forever, printing each finished move, until the parent kills it.
import type { MoveStep, Tier } from "../../src/blobs/tiered/options.js";
import { makeLayout, openLayout } from "./tiered-fixtures.js";

interface Args {
  root: string;
  key: string;
  action: "move" | "cycle";
  to?: Tier;
  killAt?: MoveStep;
  /** With killAt "shard-written": die after this many shards are durable. */
  shardCount?: number;
}

const args = JSON.parse(process.argv[2]!) as Args;
const store = await openLayout(makeLayout(args.root));

function die(): never {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

if (args.action === "move") {
  let shards = 0;
  await store.moveTo(args.key, args.to!, {
    onStep: ({ step }) => {
      if (step === "shard-written") shards++;
      if (step !== args.killAt) return;
      if (step === "shard-written" && shards < (args.shardCount ?? 1)) return;
      die();
    },
  });
  // The kill step never came: tell the parent (it expects death by SIGKILL).
  console.log("finished without being killed");
  await store.close();
} else {
  const route: Tier[] = ["warm", "cold", "hot", "cold", "warm", "hot"];
  for (let i = 0; ; i++) {
    const to = route[i % route.length]!;
    await store.moveTo(args.key, to);
    console.log(`moved ${to}`);
  }
}
