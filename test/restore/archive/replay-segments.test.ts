import { describe, expect, it } from 'vitest';
import type { SegmentEntry } from '../../../src/binlog/archive-catalog.js';
import { selectSegments } from '../../../src/restore/archive/replay-segments.js';

const seg = (serverFile: string, startPos: number, endPos: number, fileComplete = false, t = '2026-11-01T10:00:00Z'): SegmentEntry => ({
  key: `segments/s/${serverFile}/${startPos}-${endPos}.binlog`, size: endPos - startPos, sha256: 'x', source: 's', epoch: 1, serverFile, startPos, endPos, firstEventTime: t, lastEventTime: t, fileComplete,
});
const later = { kind: 'time' as const, at: new Date('2026-11-02T00:00:00Z') };

describe('selectSegments', () => {
  it('follows the chain from the dump position across files', () => {
    const all = [seg('b.000001', 4, 100), seg('b.000001', 100, 200, true), seg('b.000002', 4, 50)];
    expect(selectSegments(all, { file: 'b.000001', position: 150 }, later).segments.map((s) => s.key)).toEqual([all[1]!.key, all[2]!.key]);
    // a position at a segment's end starts with the next one
    expect(selectSegments(all, { file: 'b.000001', position: 100 }, later).segments[0]?.key).toBe(all[1]!.key);
  });

  it('refuses to cross a hole, naming the range', () => {
    const hole = [seg('b.000001', 4, 100), seg('b.000001', 120, 200)];
    expect(() => selectSegments(hole, { file: 'b.000001', position: 4 }, later)).toThrow(/gap after b\.000001:100 \(next archived: b\.000001:120\)/);
    const skipped = [seg('b.000001', 4, 100, true), seg('b.000003', 4, 50)];
    expect(() => selectSegments(skipped, { file: 'b.000001', position: 4 }, later)).toThrow(/gap after b\.000001:100 \(next archived: b\.000003:4\)/);
    const unfinished = [seg('b.000001', 4, 100, false), seg('b.000002', 4, 50)];
    expect(() => selectSegments(unfinished, { file: 'b.000001', position: 4 }, later)).toThrow(/gap after b\.000001:100/);
  });

  it('stops before segments past the moment, so a hole after it does not matter', () => {
    const all = [seg('b.000001', 4, 100, false, '2026-11-01T10:00:00Z'), seg('b.000001', 150, 200, false, '2026-11-03T00:00:00Z')];
    expect(selectSegments(all, { file: 'b.000001', position: 4 }, later).segments).toHaveLength(1);
  });

  it('says where the archive is when it does not hold the dump position', () => {
    expect(() => selectSegments([seg('b.000005', 4, 100)], { file: 'b.000001', position: 4 }, later)).toThrow(/no segment at the dump's position b\.000001:4/);
  });
});
