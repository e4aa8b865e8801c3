/** "replay: 45% of 403 MiB, about 12 s left" every few seconds, from the bytes read so far. */
export function replayProgress(totalBytes: number, out: (line: string) => void, everyMs = 3000): (bytesRead: number) => void {
  const started = Date.now();
  let last = started;
  return (bytesRead) => {
    const now = Date.now();
    if (now - last < everyMs || bytesRead >= totalBytes) return;
    last = now;
    const fraction = totalBytes > 0 ? bytesRead / totalBytes : 1;
    const left = fraction > 0 ? ((now - started) / fraction - (now - started)) / 1000 : undefined;
    out(`replay: ${Math.floor(fraction * 100)}% of ${(totalBytes / 1048576).toFixed(1)} MiB read${left !== undefined ? `, about ${Math.ceil(left)} s left` : ''}`);
  };
}
