import { describe, expect, it } from "vitest";
import { apiFields, camelCase, columnFields, snakeCase } from "../../src/lib/fields";

describe("field renaming between rows and API bodies", () => {
  it.each([
    ["id", "id"],
    ["requestId", "request_id"],
    ["isHealthyProbability", "is_healthy_probability"],
    ["image2Url", "image2_url"],
  ])("snakeCase(%s) is %s and camelCase turns it back", (camel, snake) => {
    expect(snakeCase(camel)).toBe(snake);
    expect(camelCase(snake)).toBe(camel);
  });

  it("apiFields renames exactly the named properties and keeps their values (null and false included)", () => {
    const row = { id: "a", requestId: "r", isConfirmed: false, confirmedAt: null, secret: "never" };
    const body = apiFields(row, "id requestId isConfirmed confirmedAt");
    expect(body).toStrictEqual({ id: "a", request_id: "r", is_confirmed: false, confirmed_at: null });
    expect(Object.keys(body)).not.toContain("secret");
  });

  it("columnFields renames the named fields and leaves out absent ones, so an update writes only what it got", () => {
    const patch: { scientific_name?: string; personal_notes?: string; is_favorite?: boolean } = { personal_notes: "", is_favorite: false };
    expect(columnFields(patch, "scientific_name personal_notes is_favorite")).toStrictEqual({ personalNotes: "", isFavorite: false });
  });

  it("refuses, at compile time, a name the input does not have", () => {
    const row = { id: "a", requestId: "r" };
    // @ts-expect-error: "requestID" is not a property of the row
    apiFields(row, "id requestID");
    // @ts-expect-error: "request_id" is a body field, not a column
    apiFields(row, "request_id");
  });
});
