/**
 * How a zod validation failure reads in Weft's errors: every bad field by its dotted path (`root`
 * when the whole value is wrong) with zod's message, joined by "; ". Configs, requests, filters and
 * tool arguments all say it the same way.
 */
import type { z } from 'zod';

export function describeZodIssues(error: z.ZodError, root = '(config)', limit = Infinity): string {
  return error.issues
    .slice(0, limit)
    .map((i) => `${i.path.join('.') || root}: ${i.message}`)
    .join('; ');
}
