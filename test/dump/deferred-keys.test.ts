import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deferSecondaryKeys } from '../../src/dump/deferred-keys.js';
import { loadDump, runDump } from '../../src/dump/index.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { startMariadb, stopAllMariadb } from '../support/mariadb.js';
import { fingerprintTable } from '../support/table-fingerprint.js';

const SBTEST = `CREATE TABLE \`sbtest1\` (
  \`id\` int(11) NOT NULL AUTO_INCREMENT,
  \`k\` int(11) NOT NULL DEFAULT 0,
  \`c\` char(120) NOT NULL DEFAULT '',
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`uc\` (\`c\`),
  KEY \`k_1\` (\`k\`),
  KEY \`kc\` (\`k\`,\`c\`) COMMENT 'two'
) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4`;

describe('deferSecondaryKeys', () => {
  it('takes the plain keys of an InnoDB table out, in order, and leaves valid SQL', () => {
    const d = deferSecondaryKeys(SBTEST, 'InnoDB');
    expect(d.adds).toEqual(['ADD KEY `k_1` (`k`)', "ADD KEY `kc` (`k`,`c`) COMMENT 'two'"]);
    expect(d.create).toContain('PRIMARY KEY (`id`),\n  UNIQUE KEY `uc` (`c`)\n) ENGINE=InnoDB');
    expect(d.create).not.toMatch(/k_1|kc/);
  });

  it('defers nothing for other engines, foreign keys, or a key the AUTO_INCREMENT column needs', () => {
    expect(deferSecondaryKeys(SBTEST, 'MyISAM').adds).toEqual([]);
    const fk = SBTEST.replace("COMMENT 'two'", "COMMENT 'two',\n  CONSTRAINT `f` FOREIGN KEY (`k`) REFERENCES `p` (`id`)");
    expect(deferSecondaryKeys(fk, 'InnoDB')).toEqual({ create: fk, adds: [] });
    const autoInKey = SBTEST.replace('PRIMARY KEY (`id`),\n', '').replace('KEY `k_1` (`k`)', 'KEY `k_1` (`id`)');
    expect(deferSecondaryKeys(autoInKey, 'InnoDB').adds).toEqual(["ADD KEY `kc` (`k`,`c`) COMMENT 'two'"]);
  });
});

describe('secondary keys built after the load (real MariaDB)', () => {
  it('gives back the same definition and rows, keys and all, for tables that get them deferred and tables that do not', { timeout: 120_000 }, async () => {
    const a = await startMariadb();
    const dir = await mkdtemp(join(tmpdir(), 'deferred-keys-'));
    const storage = createLocalStorage({ path: dir });
    try {
      await a.query('CREATE DATABASE k');
      await a.query(`CREATE TABLE k.plain (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, a INT NOT NULL, b VARCHAR(200) NOT NULL, c INT AS (a * 2) VIRTUAL,
        UNIQUE KEY ub (b(20), a), KEY ka (a), KEY kb (b(10)) COMMENT 'prefix', INDEX kc (c), KEY kab (a DESC, b)) ENGINE=InnoDB`);
      await a.query('CREATE TABLE k.auto_in_key (x INT NOT NULL, id INT NOT NULL AUTO_INCREMENT, KEY kid (id), KEY kx (x)) ENGINE=InnoDB');
      await a.query('CREATE TABLE k.parent (id INT PRIMARY KEY) ENGINE=InnoDB');
      await a.query('CREATE TABLE k.child (id INT PRIMARY KEY, p INT, v INT, KEY kv (v), CONSTRAINT fp FOREIGN KEY (p) REFERENCES k.parent (id)) ENGINE=InnoDB');
      await a.query('CREATE TABLE k.aria (id INT PRIMARY KEY, v INT, KEY kv (v)) ENGINE=Aria');
      await a.query('INSERT INTO k.plain (a, b) SELECT seq % 97, CONCAT(\'row \', seq) FROM k.seq_1_to_3000');
      await a.query('INSERT INTO k.auto_in_key (x) SELECT seq FROM k.seq_1_to_500');
      await a.query('INSERT INTO k.parent SELECT seq FROM k.seq_1_to_10');
      await a.query('INSERT INTO k.child SELECT seq, 1 + seq % 10, seq % 7 FROM k.seq_1_to_300');
      await a.query('INSERT INTO k.aria SELECT seq, seq % 5 FROM k.seq_1_to_300');
      const manifest = await runDump({ source: { host: a.host, port: a.port, user: a.archiver.user, password: a.archiver.password }, storage, tier: 'daily', mode: 'backup-stage', concurrency: 2, chunkBytes: 16 * 1024, databases: ['k'] });
      const target = { host: a.host, port: a.port, user: a.rootUser, password: a.rootPassword };
      const report = await loadDump({ storage, dumpPrefix: manifest.prefix, target, renameDatabase: 'k2' });
      expect(report.tables.every((t) => t.ok === true)).toBe(true);
      const plain = await loadDump({ storage, dumpPrefix: manifest.prefix, target, renameDatabase: 'k3', deferKeys: false });
      expect(plain.tables.every((t) => t.ok === true)).toBe(true);
      const conn = await a.connectRoot();
      try {
        for (const t of ['plain', 'auto_in_key', 'parent', 'child', 'aria']) {
          expect({ t, ...(await fingerprintTable(conn, 'k2', t)) }).toEqual({ t, ...(await fingerprintTable(conn, 'k', t)) });
          expect({ t, ...(await fingerprintTable(conn, 'k3', t)) }).toEqual({ t, ...(await fingerprintTable(conn, 'k', t)) });
        }
      } finally {
        await conn.end();
      }
    } finally {
      await stopAllMariadb();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
