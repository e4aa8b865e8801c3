/**
 * Spool item ids: `<ms, 15 digits>-<sequence, 6 digits>`, fixed width so that the plain string
 * order of file names is the enqueue order. Monotone even when the clock steps back (the last id's
 * time is kept) or more than a million items arrive in one millisecond (the time part moves on).
 */
export const SPOOL_ID = /^\d{15}-\d{6}$/;

const MAX_SEQ = 999_999;

export function nextSpoolId(nowMs: number, lastId: string): string {
  const [lastMsText, lastSeqText] = lastId ? lastId.split('-') : ['', ''];
  const lastMs = lastMsText ? Number(lastMsText) : -1;
  const lastSeq = lastSeqText ? Number(lastSeqText) : -1;
  let ms = Math.max(Math.floor(nowMs), lastMs);
  let seq = ms === lastMs ? lastSeq + 1 : 0;
  if (seq > MAX_SEQ) {
    ms += 1;
    seq = 0;
  }
  return `${String(ms).padStart(15, '0')}-${String(seq).padStart(6, '0')}`;
}
