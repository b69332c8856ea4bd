// Light structural checks with messages that say which field is wrong, so a bad payload shows a clear
// error in the panel instead of a blank view or a stack trace deep in a view.

export class DataError extends Error {}

export function obj(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DataError(`${where} must be an object`);
  }
  return value as Record<string, unknown>;
}

export function arr(value: unknown, where: string, length?: number): unknown[] {
  if (!Array.isArray(value)) throw new DataError(`${where} must be an array`);
  if (length !== undefined && value.length !== length) {
    throw new DataError(`${where} has ${value.length} entries, expected ${length}`);
  }
  return value;
}

export function finite(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new DataError(`${where} must be a finite number`);
  return value;
}

export function str(value: unknown, where: string): string {
  if (typeof value !== "string") throw new DataError(`${where} must be a string`);
  return value;
}

/** Checks `tokens` and returns its length. */
export function checkTokens(data: Record<string, unknown>): number {
  const tokens = arr(data.tokens, "tokens");
  tokens.forEach((t, i) => str(obj(t, `tokens[${i}]`).text, `tokens[${i}].text`));
  return tokens.length;
}

/** Checks a rectangular numeric matrix (nulls allowed when `nullable`). */
export function matrix(value: unknown, where: string, rows: number, cols: number, nullable = false): void {
  arr(value, where, rows).forEach((row, r) => {
    arr(row, `${where}[${r}]`, cols).forEach((v, c) => {
      if (nullable && v === null) return;
      finite(v, `${where}[${r}][${c}]`);
    });
  });
}

export function position(value: unknown, where: string, count: number): number {
  const p = finite(value, where);
  if (!Number.isInteger(p) || p < 0 || p >= count) throw new DataError(`${where} = ${p} is not a token position (0..${count - 1})`);
  return p;
}

/** A predicted position: 1..count, where count means the token after the text. */
export function predicted(value: unknown, where: string, count: number): number {
  const p = finite(value, where);
  if (!Number.isInteger(p) || p < 1 || p > count) throw new DataError(`${where} = ${p} is not a predicted position (1..${count})`);
  return p;
}
