import type { Checkpoint } from './checkpoint.js';
import { compareBinlogFiles, segmentSource } from './segment-name.js';
import type { BinlogPosition } from './segment-writer.js';
import type { ServerBinlogs } from './server-binlogs.js';

/**
 * Decides where a stream starts, and whether the archive has lost something on the way: the
 * checkpoint is compared with what the server still has. Never guesses past a loss: every case
 * where bytes after the checkpoint can no longer be read is a Gap with its exact range.
 */

export type GapReason = 'purged' | 'reset' | 'different-server' | 'continuity';

export interface Gap {
  reason: GapReason;
  source: string;
  /** the last archived position; nothing after it (in that history) was archived */
  from: BinlogPosition & { lastEventTime?: number };
  /** where archiving resumes */
  to: BinlogPosition & { source: string };
  detail: string;
}

export interface StartDecision {
  start: BinlogPosition;
  source: string;
  epoch: number;
  gap?: Gap;
}

export type StartFrom = 'earliest' | 'current';

export function decideStart(checkpoint: Checkpoint | undefined, server: ServerBinlogs, startFrom: StartFrom = 'earliest'): StartDecision {
  const first = server.files[0];
  if (!checkpoint) {
    const start = startFrom === 'current' || !first ? server.current : { file: first.name, position: 4 };
    return { start, source: segmentSource(server), epoch: 1 };
  }
  const from = gapStart(checkpoint);
  const restart = (reason: GapReason, detail: string) => restartDecision(checkpoint, server, reason, detail);

  if (server.serverId !== checkpoint.serverId || (checkpoint.serverUuid && server.serverUuid !== checkpoint.serverUuid)) {
    return restart(
      'different-server',
      `the server behind the source address changed (server_id ${checkpoint.serverId} → ${server.serverId}${server.serverUuid ? `, uuid ${server.serverUuid}` : ''})`,
    );
  }
  const file = server.files.find((f) => f.name === checkpoint.next.file);
  if (file) {
    if (file.size < checkpoint.next.position) {
      return restart('reset', `${file.name} is ${file.size} bytes on the server but ${checkpoint.next.position} were archived: the binlog was reset`);
    }
    return { start: checkpoint.next, source: checkpoint.source, epoch: checkpoint.epoch };
  }
  if (first && compareBinlogFiles(checkpoint.next.file, first.name) < 0) {
    // same history, the server removed files we had not read yet: continue with what is left
    const start = { file: first.name, position: 4 };
    return {
      start,
      source: checkpoint.source,
      epoch: checkpoint.epoch,
      gap: {
        reason: 'purged',
        source: checkpoint.source,
        from,
        to: { ...start, source: checkpoint.source },
        detail: `${checkpoint.next.file} was purged from the server before it was archived; the oldest binlog left is ${first.name}`,
      },
    };
  }
  return restart('reset', `${checkpoint.next.file} is not on the server, whose binlogs are ${first?.name ?? 'none'}..${server.files.at(-1)?.name ?? ''}: RESET MASTER or a new server`);
}

/**
 * The server's history no longer continues the archive's: archive it from its oldest binlog under a
 * new epoch, so no object name of the old history is ever reused for other bytes.
 */
export function restartDecision(checkpoint: Checkpoint, server: ServerBinlogs, reason: GapReason, detail: string): StartDecision {
  const epoch = checkpoint.epoch + 1;
  const source = epochSource(segmentSource(server), epoch);
  const first = server.files[0];
  const start = first ? { file: first.name, position: 4 } : server.current;
  return { start, source, epoch, gap: { reason, source: checkpoint.source, from: gapStart(checkpoint), to: { ...start, source }, detail } };
}

function gapStart(checkpoint: Checkpoint): Gap['from'] {
  return { ...checkpoint.next, ...(checkpoint.lastEventTime !== undefined ? { lastEventTime: checkpoint.lastEventTime } : {}) };
}

/** Epoch 1 keeps the plain name so a server's first history reads naturally. */
export function epochSource(base: string, epoch: number): string {
  return epoch <= 1 ? base : `${base}-e${epoch}`;
}

export function describeGap(gap: Gap): string {
  const time = gap.from.lastEventTime !== undefined ? ` (last archived event at ${new Date(gap.from.lastEventTime).toISOString()})` : '';
  return `gap in the binlog archive of ${gap.source}: nothing after ${gap.from.file}:${gap.from.position}${time} until ${gap.to.source} ${gap.to.file}:${gap.to.position} — ${gap.detail}`;
}
