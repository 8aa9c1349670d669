export const nowIso = (now = Date.now()): string => new Date(now).toISOString();

export const isoIn = (seconds: number, now = Date.now()): string => new Date(now + seconds * 1000).toISOString();

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** `30m`, `24h`, `7d`, `3600` or 3600 → seconds. The contract has already checked the shape. */
export function durationSeconds(value: string | number): number {
  if (typeof value === 'number') return value;
  const unit = value.at(-1) as keyof typeof UNIT_SECONDS;
  if (unit in UNIT_SECONDS) return Number(value.slice(0, -1)) * UNIT_SECONDS[unit];
  return Number(value);
}
