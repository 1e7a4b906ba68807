import { describe, expect, it } from "vitest";
import { compileCondition } from "../../src/conditions/cel.js";
import { loadConditions } from "../../src/conditions/cel-js.js";
import { IPAddress } from "../../src/conditions/ipaddress.js";
import { convertParam } from "../../src/conditions/params.js";
import type { ConditionDef, ConditionParamType } from "../../src/model/program.js";
import { isNexusError } from "../../src/util/errors.js";

// This file compiles models with conditions or caveats synchronously: the CEL runtime first.
await loadConditions();

function condition(expression: string, parameters: Record<string, ConditionParamType>): ConditionDef {
  return { name: "c", expression, parameters: new Map(Object.entries(parameters)) };
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isNexusError(error) ? error.code : "not a NexusError";
  }
  return undefined;
}

describe("conditions", () => {
  it("evaluates with the request context merged under the tuple's context (the tuple wins)", () => {
    const c = compileCondition(condition("x < limit", { x: "int", limit: "int" }));
    expect(c.evaluate({ x: 5, limit: 1 }, { limit: 10 }, "t")).toBe(true);
    expect(c.evaluate({ x: 50, limit: 100 }, { limit: 10 }, "t")).toBe(false);
  });

  it("reports any missing parameter as condition_missing_parameter, naming it", () => {
    const c = compileCondition(condition("x < 100 || true", { x: "int" }));
    try {
      c.evaluate({}, undefined, "doc:1#viewer@user:anne");
      expect.unreachable();
    } catch (error) {
      expect(isNexusError(error, "condition_missing_parameter")).toBe(true);
      expect((error as Error).message).toContain("x");
      expect((error as Error).message).toContain("doc:1#viewer@user:anne");
    }
  });

  it("converts parameter values as OpenFGA does", () => {
    expect(convertParam("int", 10)).toBe(10n);
    expect(convertParam("int", "-7")).toBe(-7n);
    expect(() => convertParam("int", 1.5)).toThrow();
    expect(convertParam("double", "2.5")).toBe(2.5);
    expect(() => convertParam("double", Number.POSITIVE_INFINITY)).toThrow();
    expect(() => convertParam("double", "1e309")).toThrow();
    expect(convertParam("timestamp", "2023-10-11T10:00:00Z")).toEqual(new Date("2023-10-11T10:00:00Z"));
    expect(() => convertParam("timestamp", "yesterday")).toThrow();
    expect(() => convertParam("bool", "true")).toThrow();
    expect(convertParam({ list: "string" }, ["a"])).toEqual(["a"]);
    expect(convertParam({ map: "int" }, { a: 1 })).toEqual(new Map([["a", 1n]]));
  });

  it("evaluates timestamps, durations, lists, maps, doubles and ip addresses", () => {
    const cases: [string, Record<string, ConditionParamType>, Record<string, unknown>, boolean][] = [
      [
        'ts < timestamp("2023-10-11T10:00:00.000Z")',
        { ts: "timestamp" },
        { ts: "2023-10-11T09:00:00.000Z" },
        true,
      ],
      ['d > duration("1h")', { d: "duration" }, { d: "90m" }, true],
      ['"a" in l', { l: { list: "string" } }, { l: ["b"] }, false],
      ["m.k == 2", { m: { map: "int" } }, { m: { k: 2 } }, true],
      ["x > 0.0", { x: "double" }, { x: 1.7976931348623157 }, true],
      ['ip.in_cidr("192.168.0.0/24")', { ip: "ipaddress" }, { ip: "192.168.0.1" }, true],
      ['ip.in_cidr("192.168.0.0/24")', { ip: "ipaddress" }, { ip: "192.168.1.0" }, false],
      ["u > uint(3)", { u: "uint" }, { u: 4 }, true],
      ["a.b == 1.0", { a: "any" }, { a: { b: 1 } }, true],
    ];
    for (const [expression, params, context, expected] of cases) {
      expect(
        compileCondition(condition(expression, params)).evaluate(context, undefined, "t"),
        expression,
      ).toBe(expected);
    }
  });

  it("rejects bad values as invalid_argument and runtime failures as invalid_condition", () => {
    const c = compileCondition(condition("x / y > 0", { x: "int", y: "int" }));
    expect(errorCode(() => c.evaluate({ x: "abc", y: 1 }, undefined, "t"))).toBe("invalid_argument");
    expect(errorCode(() => c.evaluate({ x: 1, y: 0 }, undefined, "t"))).toBe("invalid_condition");
  });

  it("refuses expressions that do not parse or are not bool, as invalid_model", () => {
    expect(errorCode(() => compileCondition(condition("x <", { x: "int" })))).toBe("invalid_model");
    expect(errorCode(() => compileCondition(condition("x + 1", { x: "int" })))).toBe("invalid_model");
    expect(errorCode(() => compileCondition(condition("y > 1", { x: "int" })))).toBe("invalid_model");
  });

  it("checks a tuple's stored context against the parameters", () => {
    const c = compileCondition(condition("x < 1", { x: "int" }));
    expect(c.problemWithTupleContext({ x: 3 })).toBeUndefined();
    expect(c.problemWithTupleContext({ y: 3 })).toContain("y");
    expect(c.problemWithTupleContext({ x: "nope" })).toContain("x");
  });
});

describe("CEL equality and null comparisons, as OpenFGA's types implement them", () => {
  const types: [ConditionParamType, unknown][] = [
    ["bool", true],
    ["string", "a"],
    ["int", 1],
    ["uint", 1],
    ["double", 1.5],
    ["duration", "1h"],
    ["timestamp", "2024-01-01T00:00:00Z"],
    ["ipaddress", "10.0.0.1"],
    ["any", { a: 1 }],
    [{ list: "string" }, ["a"]],
    [{ map: "int" }, { a: 1 }],
  ];
  it("compiles `x != null` and `x == null` for every parameter type (no 'no such overload')", () => {
    for (const [type, value] of types) {
      expect(
        compileCondition(condition("x != null", { x: type })).evaluate({ x: value }, undefined, "t"),
      ).toBe(true);
      expect(
        compileCondition(condition("x == null", { x: type })).evaluate({ x: value }, undefined, "t"),
      ).toBe(false);
      expect(
        compileCondition(condition("null != x", { x: type })).evaluate({ x: value }, undefined, "t"),
      ).toBe(true);
    }
  });

  it("compares ip addresses with == and != (same family, same address)", () => {
    const eq = compileCondition(condition('ip == ipaddress("10.0.0.1")', { ip: "ipaddress" }));
    expect(eq.evaluate({ ip: "10.0.0.1" }, undefined, "t")).toBe(true);
    expect(eq.evaluate({ ip: "10.0.0.2" }, undefined, "t")).toBe(false);
    const ne = compileCondition(condition("a != b", { a: "ipaddress", b: "ipaddress" }));
    expect(ne.evaluate({ a: "::1", b: "0:0:0:0:0:0:0:1" }, undefined, "t")).toBe(false);
    expect(ne.evaluate({ a: "10.0.0.1", b: "::ffff:10.0.0.1" }, undefined, "t")).toBe(true);
  });

  it("loads an OpenFGA model using them and answers with its conditions", async () => {
    const { createEngine } = await import("../../src/engine/engine.js");
    const engine = await createEngine({
      model: `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user with from_office, user with not_expired]
condition from_office(ip: ipaddress, office: ipaddress) {
  ip == office || ip != null && ip.in_cidr("192.168.0.0/24")
}
condition not_expired(expires: timestamp, grace: duration, now: timestamp) {
  expires != null && grace != null && now < expires + grace
}`,
    });
    try {
      await engine.write({
        writes: [
          {
            user: "user:anne",
            relation: "viewer",
            object: "doc:1",
            condition: { name: "from_office", context: { office: "10.1.1.1" } },
          },
          {
            user: "user:bob",
            relation: "viewer",
            object: "doc:1",
            condition: { name: "not_expired", context: { expires: "2024-01-01T00:00:00Z", grace: "1h" } },
          },
        ],
      });
      const check = (user: string, context: Record<string, unknown>) =>
        engine.check({ user, relation: "viewer", object: "doc:1", context, consistency: "fully_consistent" });
      expect(await check("user:anne", { ip: "10.1.1.1" })).toBe(true);
      expect(await check("user:anne", { ip: "10.1.1.2" })).toBe(false);
      expect(await check("user:anne", { ip: "192.168.0.7" })).toBe(true);
      expect(await check("user:bob", { now: "2024-01-01T00:30:00Z" })).toBe(true);
      expect(await check("user:bob", { now: "2024-01-01T02:00:00Z" })).toBe(false);
    } finally {
      await engine.close();
    }
  });
});

describe("IPAddress", () => {
  it("parses IPv4 and IPv6 and matches CIDR prefixes of the same family only", () => {
    expect(IPAddress.parse("10.1.2.3")!.inCidr("10.0.0.0/8")).toBe(true);
    expect(IPAddress.parse("10.1.2.3")!.inCidr("10.1.2.3/32")).toBe(true);
    expect(IPAddress.parse("11.1.2.3")!.inCidr("10.0.0.0/8")).toBe(false);
    expect(IPAddress.parse("2001:db8::1")!.inCidr("2001:db8::/32")).toBe(true);
    expect(IPAddress.parse("2001:db9::1")!.inCidr("2001:db8::/32")).toBe(false);
    expect(IPAddress.parse("::ffff:10.0.0.1")!.inCidr("10.0.0.0/8")).toBe(false);
    expect(IPAddress.parse("1.2.3.4")!.inCidr("0.0.0.0/0")).toBe(true);
    for (const bad of ["1.2.3", "256.1.1.1", "01.1.1.1", "1::2::3", "gg::1", ""])
      expect(IPAddress.parse(bad), bad).toBeUndefined();
    expect(() => IPAddress.parse("1.2.3.4")!.inCidr("1.2.3.4/33")).toThrow();
    expect(() => IPAddress.parse("1.2.3.4")!.inCidr("1.2.3.4")).toThrow();
  });
});
