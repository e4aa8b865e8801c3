import { afterAll, beforeAll, expect, it } from 'vitest';
import { restoreTableFromRds } from '../../../src/restore/rds/index.js';
import { stopAllMariadb } from '../../support/mariadb.js';
import { baseOptions, captureLogger, describeError, errorOf, startRig, T_DELETE, type Rig } from './helpers.js';

// large enough that the rows cannot all sit in socket buffers when the connection is killed
const BIG_ROWS = 30_000;
let rig: Rig;
beforeAll(async () => {
  rig = await startRig([
    "CREATE DATABASE seq",
    'CREATE TABLE app.big (id INT PRIMARY KEY, body VARCHAR(1100) NOT NULL)',
    `INSERT INTO app.big SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM seq.seq_1_to_${BIG_ROWS}`,
  ]);
});
afterAll(async () => {
  await rig?.fake.close();
  await stopAllMariadb();
});

it('the temporary server dies mid-copy: copy error, partial table removed, instance deleted', async () => {
  const at = new Date(T_DELETE.getTime() - 2000);
  const instance = 'prod-db-restore-20261125100958';
  let killed = false;
  let rowsAtKill = 0;
  let kill: Promise<unknown> | undefined;
  const log = captureLogger();
  const error = await errorOf(
    restoreTableFromRds(
      baseOptions(rig, log, {
        at,
        table: { db: 'app', name: 'big' },
        onProgress: async (p) => {
          if (p.phase !== 'copy' || killed) return;
          killed = true;
          rowsAtKill = p.rows;
          // the temporary server dies mid-copy (SIGKILL): its connection drops with rows still to come
          kill = rig.fake.instance(instance)!.server!.kill();
        },
      }),
    ),
  );
  expect(killed).toBe(true);
  await kill?.catch(() => undefined);
  expect(rowsAtKill).toBeLessThan(BIG_ROWS);
  expect(error.code).toBe('E_TABLE_COPY');
  expect(error.message).toMatch(new RegExp(`copy of \`app\`.\`big\` failed after \\d+ of ${BIG_ROWS} rows`));
  const left = (await rig.db.query(`SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME LIKE 'big__restored%'`)) as unknown[];
  expect(left).toEqual([]);
  expect(await describeError(rig.rds, instance)).toBe('DBInstanceNotFoundFault');
  expect(rig.fake.history.find((i) => i.identifier === instance)?.serverStopped).toBe(true);
  // the live table is intact
  expect(Number(((await rig.db.query('SELECT COUNT(*) AS n FROM app.big')) as { n: unknown }[])[0]?.n)).toBe(BIG_ROWS);
});
