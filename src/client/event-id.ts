/**
 * Compares the server's event ids (`<ms>-<seq>`, openapi.yaml `EventId`): negative when `a` is
 * older. Ids of another shape compare as equal to nothing and older than everything.
 */
export function compareEventIds(a: string, b: string): number {
  const pa = parse(a);
  const pb = parse(b);
  if (pa === undefined || pb === undefined) return pa === pb ? 0 : pa === undefined ? -1 : 1;
  return pa[0] !== pb[0] ? pa[0] - pb[0] : pa[1] - pb[1];
}

function parse(id: string): [number, number] | undefined {
  const match = /^(\d{1,16})-(\d{1,16})$/.exec(id);
  return match === null ? undefined : [Number(match[1]), Number(match[2])];
}
