/**
 * Keyset pages: a long ordered read taken a page at a time, each page the rows after the last one
 * read ("after this row in this order"), never an offset. A row inserted or deleted between two
 * pages moves no other row across the boundary, so a row present throughout is read exactly once
 * — as long as the order's columns never change on a row (sort by when a row was made, not when it
 * was last changed) and the last key is unique (an id).
 */
import { and, asc, desc, eq, gt, lt, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";

/** One key of a keyset order: its column (never null), its direction, and its value in a row read. */
export interface KeysetKey<Row> {
  column: SQLiteColumn;
  direction: "asc" | "desc";
  of: (row: Row) => string | number;
}

/** A key of an order, whatever the rows read. */
export type OrderKey = Pick<KeysetKey<unknown>, "column" | "direction">;

/** An order to page by: its last key unique among the rows read. */
export type KeysetOrder<Row> = readonly [KeysetKey<Row>, ...KeysetKey<Row>[]];

/** The fields of a row read that can hold a key's value. */
type KeyField<Row> = { [K in keyof Row]-?: Row[K] extends string | number ? K : never }[keyof Row];

/** A key given to `ascending` or `descending`: its column, and the field of a row read that holds its value. */
export type KeyOf<Row> = readonly [column: SQLiteColumn, field: KeyField<Row>];

function orderOf<Row>(direction: "asc" | "desc", [first, ...rest]: readonly [KeyOf<Row>, ...KeyOf<Row>[]]): KeysetOrder<Row> {
  const key = ([column, field]: KeyOf<Row>): KeysetKey<Row> => ({ column, direction, of: (row) => row[field] as string | number });
  return [key(first), ...rest.map(key)];
}

/** The order of `keys`, each ascending: `ascending([t.createdAt, "createdAt"], [t.id, "id"])` is oldest first, then by id. */
export function ascending<Row>(...keys: [KeyOf<Row>, ...KeyOf<Row>[]]): KeysetOrder<Row> {
  return orderOf("asc", keys);
}

/** The order of `keys`, each descending: `descending([t.createdAt, "createdAt"], [t.id, "id"])` is newest first. */
export function descending<Row>(...keys: [KeyOf<Row>, ...KeyOf<Row>[]]): KeysetOrder<Row> {
  return orderOf("desc", keys);
}

/** The `ORDER BY` of `order`. */
export function keysetOrderBy(order: readonly OrderKey[]): SQL[] {
  return order.map((key) => (key.direction === "asc" ? asc(key.column) : desc(key.column)));
}

/** Rows after `row` in `order`: `a > x OR (a = x AND b > y) OR …` (`<` for a descending key). */
export function keysetAfter<Row>(order: KeysetOrder<Row>, row: Row): SQL {
  const beyond = (key: KeysetKey<Row>) => (key.direction === "asc" ? gt : lt)(key.column, key.of(row));
  const ties = order.map((key, i) => and(...order.slice(0, i).map((before) => eq(before.column, before.of(row))), beyond(key)));
  return or(...ties) as SQL;
}

/**
 * The pages of one keyset read, each as `page` makes it from the rows after the last page's last
 * row (none: from the start). `page` reads at most `pageSize` rows; a shorter page is the last.
 * `first`, when given, is the first page already read (with other reads, in one batch).
 */
export async function* keysetPages<Row, Body>(
  order: KeysetOrder<Row>,
  pageSize: number,
  page: (after: SQL | undefined) => Promise<{ rows: Row[]; bodies: Body[] }>,
  first?: { rows: Row[]; bodies: Body[] },
): AsyncGenerator<Body[], void, undefined> {
  let next = first ?? (await page(undefined));
  for (;;) {
    if (next.bodies.length > 0) yield next.bodies;
    const last = next.rows.at(-1);
    if (!last || next.rows.length < pageSize) return;
    next = await page(keysetAfter(order, last));
  }
}
