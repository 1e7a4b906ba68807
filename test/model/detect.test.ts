import { describe, expect, it } from "vitest";
import { detectFormat } from "../../src/model/detect.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import { isNexusError } from "../../src/util/errors.js";

describe("detectFormat", () => {
  it("tells text models apart by their first keyword, after comments", () => {
    expect(detectFormat("model\n  schema 1.1\ntype user")).toBe("openfga");
    expect(detectFormat("# a comment\n\ntype user\n")).toBe("openfga");
    expect(detectFormat("module auth\n")).toBe("openfga");
    expect(detectFormat("definition user {}")).toBe("spicedb");
    expect(detectFormat("// comment\n/* block */\n/** doc */ definition user {}")).toBe("spicedb");
    expect(detectFormat("caveat c(x int) { x > 1 }")).toBe("spicedb");
    expect(detectFormat("use expiration\ndefinition user {}")).toBe("spicedb");
  });

  it("tells objects apart by shape, and parses JSON text", () => {
    expect(detectFormat({ schema_version: "1.1", type_definitions: [] })).toBe("openfga");
    expect(detectFormat('{"schema_version":"1.1","type_definitions":[]}')).toBe("openfga");
    expect(detectFormat(nexusFilesystemModel)).toBe("nexus");
    expect(detectFormat({ namespaces: nexusFilesystemModel })).toBe("nexus");
    expect(detectFormat([{ object_type: "file", config: { relations: {} } }])).toBe("nexus");
    expect(detectFormat(JSON.stringify(nexusFilesystemModel))).toBe("nexus");
  });

  it("throws invalid_model naming what it saw", () => {
    const cases: [unknown, string][] = [
      ["", "empty"],
      ["   \n# only a comment", "empty"],
      ["schemaless nonsense", '"schemaless"'],
      ["{not json", "not valid JSON"],
      [{ foo: 1 }, '["foo"]'],
      [[1, 2], "list"],
      [42, "42"],
    ];
    for (const [input, fragment] of cases) {
      try {
        detectFormat(input as string);
        throw new Error(`detected ${JSON.stringify(input)}`);
      } catch (error) {
        expect(isNexusError(error, "invalid_model"), String(error)).toBe(true);
        expect((error as Error).message).toContain(fragment);
      }
    }
  });
});
