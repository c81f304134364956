/** The current date and time, in UTC and optionally in an IANA time zone. */
import { z } from 'zod';
import { defineTool } from './tool.js';

export function currentTimeTool(now: () => Date = () => new Date()) {
  return defineTool({
    name: 'current_time',
    description: 'Returns the current date and time (ISO 8601 UTC, and local time in a given IANA time zone such as "Europe/Paris").',
    schema: z.object({ timezone: z.string().optional().describe('IANA time zone, e.g. "America/New_York" (default UTC)') }),
    run: ({ timezone }) => {
      const d = now();
      const lines = [`utc: ${d.toISOString()}`, `weekday: ${d.toLocaleDateString('en-US', { weekday: 'long', timeZone: 'UTC' })}`];
      if (timezone !== undefined) {
        let local: string;
        try {
          local = d.toLocaleString('en-CA', { timeZone: timezone, hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', weekday: 'long' });
        } catch {
          throw new Error(`unknown time zone '${timezone}'; use an IANA name such as "Europe/Paris"`);
        }
        lines.push(`${timezone}: ${local}`);
      }
      return lines.join('\n');
    },
  });
}
