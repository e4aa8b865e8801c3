/**
 * A fake Amazon RDS control plane that speaks the real AWS Query protocol to @aws-sdk/client-rds,
 * backed by real MariaDB servers.
 *
 *   const fake = await startFakeRds({ source: { identifier: 'prod-db', server: db } });
 *   await fake.snapshot();                        // a dated logical copy of the source, at fake.now()
 *   const rds = fake.client();                    // a real RDSClient pointed at the fake
 *   ...
 *   await fake.close();                           // stops every restored instance's mariadbd
 *
 * The source instance is the test's own mariadbd. Point-in-time recovery is approximated with dated
 * copies: `snapshot()` runs `mariadb-dump` of the source's databases (plus its logins with their
 * password hashes) into a file stamped with the fake's clock. RestoreDBInstanceToPointInTime picks
 * the newest copy taken at or before RestoreTime and loads it into a NEW throwaway mariadbd
 * (test/support/mariadb.ts), whose 127.0.0.1:port becomes the instance's endpoint. The restored
 * instance keeps the source's users and passwords, as on RDS; its master user is that server's root
 * (`instance.server.rootPassword`). The restore window is [first copy, last copy].
 *
 * States move on DescribeDBInstances polls, like the real service moves on time:
 * creating (until the server is loaded and `creatingPolls` polls have seen it) → backing-up →
 * available; after DeleteDBInstance: deleting (until the server has stopped) → gone (404).
 *
 * Faults: `throttleDescribes(n)`, `failNextRestore('failed')`, `denyDeletes(true)`,
 * `holdCreating(true)`, `rejectDeleteWhileCreating`, and `calls` records every request.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { RDSClient, type RDSClientConfig } from '@aws-sdk/client-rds';
import { startMariadb, type MariadbServer } from '../mariadb.js';
import { el, errorXml, readList, readStructList, successXml, type XmlNode } from './xml.js';

export type FakeInstanceStatus = 'creating' | 'backing-up' | 'available' | 'failed' | 'incompatible-restore' | 'deleting';

export interface FakeSnapshot {
  readonly at: Date;
  readonly file: string;
}

export interface FakeInstance {
  readonly identifier: string;
  status: FakeInstanceStatus;
  readonly instanceClass: string;
  readonly createdAt: Date;
  readonly tags: { Key: string; Value: string }[];
  readonly publiclyAccessible: boolean;
  readonly securityGroups: string[];
  readonly subnetGroup: string | undefined;
  readonly parameterGroup: string | undefined;
  /** the restore's point in time, and the copy it was loaded from */
  readonly restoreTime: Date | undefined;
  readonly snapshot: FakeSnapshot | undefined;
  /** the mariadbd serving this instance (the source's server for the source instance) */
  server: MariadbServer | undefined;
  /** true once a deleted instance's mariadbd has stopped */
  serverStopped: boolean;
  /** why loading failed, if it did */
  loadError: unknown;
  pollsInState: number;
  readonly isSource: boolean;
  /** settles when the server is loaded (or failed to) */
  ready: Promise<void>;
  readyDone: boolean;
  stopping: Promise<void> | undefined;
  /** the state a restore ends in instead of `available` (failNextRestore) */
  failAs?: FakeInstanceStatus;
}

export interface FakeRdsCall {
  readonly action: string;
  readonly params: Record<string, string>;
  readonly at: Date;
  /** the HTTP status answered */
  status: number;
  /** the raw form body, to check that no secret went over the wire */
  readonly body: string;
}

export interface FakeRdsOptions {
  source: { identifier: string; server: MariadbServer; instanceClass?: string };
  /** the fake's clock (snapshot stamps, window, create times); default Date.now */
  now?: () => Date;
  region?: string;
  /** describe polls that must see a loaded instance before it leaves `creating` (default 1) */
  creatingPolls?: number;
  /** polls in `backing-up` (default 1) */
  backingUpPolls?: number;
  /** polls in `deleting` once the server stopped (default 1) */
  deletingPolls?: number;
  /** extra mariadbd arguments for every restored instance (e.g. TLS certificates, require_secure_transport) */
  instanceArgs?: string[];
}

const ACCOUNT = '123456789012';
const SYSTEM_DBS = new Set(['information_schema', 'performance_schema', 'mysql', 'sys']);

export class FakeRds {
  readonly calls: FakeRdsCall[] = [];
  readonly snapshots: FakeSnapshot[] = [];
  /** every instance ever created, including deleted ones (their server is stopped) */
  readonly history: FakeInstance[] = [];
  readonly region: string;
  rejectDeleteWhileCreating = false;
  #instances = new Map<string, FakeInstance>();
  #throttle = 0;
  #failNext: FakeInstanceStatus | undefined;
  #denyDeletes = false;
  #holdCreating = false;
  #server: Server | undefined;
  #port = 0;
  #dir = '';
  #opts: FakeRdsOptions;
  #background = new Set<Promise<unknown>>();

  constructor(opts: FakeRdsOptions) {
    this.#opts = opts;
    this.region = opts.region ?? 'us-east-1';
  }

  /** describe polls an instance stays in `creating` from now on (slow the fake down for a signal test) */
  setCreatingPolls(polls: number): void {
    this.#opts = { ...this.#opts, creatingPolls: polls };
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  now(): Date {
    return this.#opts.now ? this.#opts.now() : new Date();
  }

  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'fake-rds-'));
    const src = this.#opts.source;
    const ready = Promise.resolve();
    this.#instances.set(src.identifier, {
      identifier: src.identifier,
      status: 'available',
      instanceClass: src.instanceClass ?? 'db.r6g.large',
      createdAt: new Date(this.now().getTime() - 86_400_000),
      tags: [{ Key: 'env', Value: 'prod' }],
      publiclyAccessible: false,
      securityGroups: ['sg-prod'],
      subnetGroup: 'prod-subnets',
      parameterGroup: 'default.mariadb10.11',
      restoreTime: undefined,
      snapshot: undefined,
      server: src.server,
      serverStopped: false,
      loadError: undefined,
      pollsInState: 0,
      isSource: true,
      ready,
      readyDone: true,
      stopping: undefined,
    });
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/xml' });
        res.end(errorXml('InternalFailure', String(error), randomUUID(), 'Receiver'));
      });
    });
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  /** A real RDSClient for this fake (no retries by default, so faults reach the code under test). */
  client(overrides: Partial<RDSClientConfig> = {}): RDSClient {
    return new RDSClient({
      region: this.region,
      endpoint: this.endpoint,
      credentials: { accessKeyId: 'AKIDFAKERDS', secretAccessKey: 'fake-rds-secret-key' },
      maxAttempts: 1,
      ...overrides,
    });
  }

  /** Takes a dated logical copy of the source (its databases and logins), stamped with now(). */
  async snapshot(): Promise<FakeSnapshot> {
    const at = this.now();
    const server = this.#opts.source.server;
    const file = join(this.#dir, `snapshot-${this.snapshots.length + 1}-${at.getTime()}.sql`);
    const dbs = ((await server.query('SHOW DATABASES')) as { Database: string }[]).map((r) => r.Database).filter((d) => !SYSTEM_DBS.has(d));
    if (dbs.length > 0) {
      await run('mariadb-dump', [
        '--no-defaults', `--socket=${server.socket}`, '--user=root', '--single-transaction', '--routines', '--triggers', '--events',
        '--hex-blob', '--databases', ...dbs,
      ], { stdoutFile: file });
    }
    // logins with their password hashes, so the restored instance accepts the same passwords
    const users = (await server.query(
      `SELECT User AS u, Host AS h FROM mysql.user WHERE User NOT IN ('root', 'mariadb.sys', 'PUBLIC', '')`,
    )) as { u: string; h: string }[];
    let sql = '\nSET sql_log_bin = 0;\n';
    for (const { u, h } of users) {
      const account = `'${u.replace(/'/g, "''")}'@'${h.replace(/'/g, "''")}'`;
      const [create] = Object.values(((await server.query(`SHOW CREATE USER ${account}`)) as Record<string, string>[])[0] ?? {});
      sql += `DROP USER IF EXISTS ${account};\n${String(create)};\n`;
      for (const row of (await server.query(`SHOW GRANTS FOR ${account}`)) as Record<string, string>[]) {
        const grant = String(Object.values(row)[0]);
        if (!/^GRANT USAGE ON \*\.\* TO/i.test(grant) || !/IDENTIFIED/i.test(grant)) sql += `${grant.replace(/ IDENTIFIED BY PASSWORD '[^']*'/, '')};\n`;
      }
    }
    sql += 'FLUSH PRIVILEGES;\n';
    await appendFile(file, sql);
    const snap = { at, file };
    this.snapshots.push(snap);
    return snap;
  }

  /** The next N DescribeDBInstances calls answer `Throttling` (HTTP 400). */
  throttleDescribes(n: number): void {
    this.#throttle = n;
  }

  /** The next restored instance ends in this state instead of `available`. */
  failNextRestore(state: 'failed' | 'incompatible-restore'): void {
    this.#failNext = state;
  }

  /** DeleteDBInstance answers AccessDenied (403) while on. */
  denyDeletes(on: boolean): void {
    this.#denyDeletes = on;
  }

  /** Restored instances stay in `creating` while on. */
  holdCreating(on: boolean): void {
    this.#holdCreating = on;
  }

  instance(identifier: string): FakeInstance | undefined {
    return this.#instances.get(identifier);
  }

  /** Identifiers of instances that exist now (not yet gone). */
  instanceIds(): string[] {
    return [...this.#instances.keys()];
  }

  callsOf(action: string): FakeRdsCall[] {
    return this.calls.filter((c) => c.action === action);
  }

  /** Stops the HTTP server and every restored instance's mariadbd, removes the copies. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server?.closeAllConnections();
    await Promise.allSettled([...this.#background]);
    for (const inst of this.history) {
      await inst.ready.catch(() => undefined);
      await inst.server?.stop().catch(() => undefined);
    }
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const params = new URLSearchParams(body);
    const action = params.get('Action') ?? '';
    const requestId = randomUUID();
    const call: FakeRdsCall = { action, params: Object.fromEntries(params), at: new Date(), status: 200, body };
    this.calls.push(call);
    const send = (status: number, xml: string) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      res.end(xml);
    };
    const fail = (status: number, code: string, message: string) => send(status, errorXml(code, message, requestId, status >= 500 ? 'Receiver' : 'Sender'));
    if (req.method !== 'POST') return fail(400, 'InvalidAction', 'the Query protocol uses POST');
    if (params.get('Version') !== '2014-10-31') return fail(400, 'InvalidParameterValue', `unsupported Version ${params.get('Version')}`);
    try {
      const result = this.#dispatch(action, params);
      send(200, successXml(action, result, requestId));
    } catch (error) {
      if (error instanceof QueryFault) return fail(error.status, error.code, error.message);
      throw error;
    }
  }

  #dispatch(action: string, p: URLSearchParams): XmlNode[] {
    switch (action) {
      case 'DescribeDBInstances':
        return this.#describeInstances(p);
      case 'DescribeDBInstanceAutomatedBackups':
        return this.#describeAutomatedBackups(p);
      case 'RestoreDBInstanceToPointInTime':
        return this.#restore(p);
      case 'DeleteDBInstance':
        return this.#delete(p);
      case 'ListTagsForResource': {
        const arn = p.get('ResourceName') ?? '';
        const inst = [...this.#instances.values()].find((i) => this.#arn(i) === arn);
        if (!inst) throw new QueryFault(404, 'DBInstanceNotFound', `DBInstance ${arn} not found.`);
        return [el('TagList', inst.tags.map((t) => el('Tag', [el('Key', t.Key), el('Value', t.Value)])))];
      }
      default:
        throw new QueryFault(400, 'InvalidAction', `The action ${action} is not valid for this web service.`);
    }
  }

  #describeInstances(p: URLSearchParams): XmlNode[] {
    if (this.#throttle > 0) {
      this.#throttle--;
      throw new QueryFault(400, 'Throttling', 'Rate exceeded');
    }
    const id = p.get('DBInstanceIdentifier');
    let list: FakeInstance[];
    if (id) {
      const inst = this.#instances.get(id);
      if (!inst) throw new QueryFault(404, 'DBInstanceNotFound', `DBInstance ${id} not found.`);
      list = [inst];
    } else {
      list = [...this.#instances.values()];
    }
    for (const inst of list) this.#advance(inst);
    list = list.filter((i) => this.#instances.has(i.identifier));
    if (id && list.length === 0) throw new QueryFault(404, 'DBInstanceNotFound', `DBInstance ${id} not found.`);
    const maxRecords = Number(p.get('MaxRecords') ?? 100);
    if (!Number.isInteger(maxRecords) || maxRecords < 20 || maxRecords > 100) {
      throw new QueryFault(400, 'InvalidParameterValue', 'MaxRecords must be between 20 and 100');
    }
    const start = Number(p.get('Marker') ?? 0);
    const page = list.slice(start, start + maxRecords);
    const next = start + maxRecords < list.length ? String(start + maxRecords) : undefined;
    return [el('DBInstances', page.map((i) => this.#instanceXml(i))), el('Marker', next)];
  }

  /** One poll's worth of progress for an instance (the real service moves on time; the fake on polls). */
  #advance(inst: FakeInstance): void {
    inst.pollsInState++;
    const move = (status: FakeInstanceStatus) => {
      inst.status = status;
      inst.pollsInState = 0;
    };
    switch (inst.status) {
      case 'creating':
        if (this.#holdCreating || !inst.readyDone) return;
        if (inst.loadError !== undefined) return move('failed');
        if (inst.pollsInState > (this.#opts.creatingPolls ?? 1)) {
          const failAs = inst.failAs;
          if (failAs) {
            // a failed restore has no usable server
            this.#track(inst.server?.stop().then(() => (inst.serverStopped = true)));
            return move(failAs);
          }
          move('backing-up');
        }
        return;
      case 'backing-up':
        if (inst.pollsInState > (this.#opts.backingUpPolls ?? 1)) move('available');
        return;
      case 'deleting':
        if (inst.serverStopped && inst.pollsInState > (this.#opts.deletingPolls ?? 1)) this.#instances.delete(inst.identifier);
        return;
      default:
        return;
    }
  }

  #describeAutomatedBackups(p: URLSearchParams): XmlNode[] {
    const id = p.get('DBInstanceIdentifier') ?? this.#opts.source.identifier;
    const inst = this.#instances.get(id);
    if (!inst || !inst.isSource) throw new QueryFault(404, 'DBInstanceAutomatedBackupNotFound', `No automated backup found for ${id}.`);
    const window = this.#window();
    if (!window) return [el('DBInstanceAutomatedBackups', [])];
    return [
      el('DBInstanceAutomatedBackups', [
        el('DBInstanceAutomatedBackup', [
          el('DBInstanceArn', this.#arn(inst)),
          el('DbiResourceId', `db-${id.toUpperCase()}`),
          el('Region', this.region),
          el('DBInstanceIdentifier', id),
          el('RestoreWindow', [el('EarliestTime', window.earliest), el('LatestTime', window.latest)]),
          el('Status', 'active'),
          el('Engine', 'mariadb'),
          el('EngineVersion', '10.11.19'),
          el('BackupRetentionPeriod', 7),
        ]),
      ]),
    ];
  }

  #window(): { earliest: Date; latest: Date } | undefined {
    const first = this.snapshots[0];
    const last = this.snapshots[this.snapshots.length - 1];
    return first && last ? { earliest: first.at, latest: last.at } : undefined;
  }

  #restore(p: URLSearchParams): XmlNode[] {
    const sourceId = p.get('SourceDBInstanceIdentifier');
    const targetId = p.get('TargetDBInstanceIdentifier');
    if (!targetId) throw new QueryFault(400, 'MissingParameter', 'TargetDBInstanceIdentifier is required');
    if (!sourceId || !this.#instances.get(sourceId)?.isSource) throw new QueryFault(404, 'DBInstanceNotFound', `DBInstance ${sourceId} not found.`);
    if (!/^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,62}$/.test(targetId) || targetId.endsWith('-')) {
      throw new QueryFault(400, 'InvalidParameterValue', `The parameter DBInstanceIdentifier is not a valid identifier: ${targetId}`);
    }
    if (this.#instances.has(targetId)) throw new QueryFault(400, 'DBInstanceAlreadyExists', 'DB instance already exists');
    const useLatest = p.get('UseLatestRestorableTime') === 'true';
    const restoreTimeText = p.get('RestoreTime');
    if (useLatest && restoreTimeText) throw new QueryFault(400, 'InvalidParameterCombination', 'Cannot specify both RestoreTime and UseLatestRestorableTime');
    const window = this.#window();
    if (!window) throw new QueryFault(400, 'InvalidRestoreFault', `No restorable time for ${sourceId}`);
    const restoreTime = useLatest ? window.latest : restoreTimeText ? new Date(restoreTimeText) : undefined;
    if (!restoreTime || Number.isNaN(restoreTime.getTime())) throw new QueryFault(400, 'InvalidParameterCombination', 'RestoreTime or UseLatestRestorableTime is required');
    if (restoreTime < window.earliest || restoreTime > window.latest) {
      throw new QueryFault(400, 'InvalidRestoreFault', `Restore time ${restoreTime.toISOString()} is outside the restorable window ${window.earliest.toISOString()} - ${window.latest.toISOString()}`);
    }
    const snapshot = [...this.snapshots].reverse().find((s) => s.at <= restoreTime) as FakeSnapshot;
    const inst: FakeInstance = {
      identifier: targetId,
      status: 'creating',
      instanceClass: p.get('DBInstanceClass') ?? this.#instances.get(sourceId)!.instanceClass,
      createdAt: this.now(),
      tags: readStructList(p, 'Tags.Tag', ['Key', 'Value']) as { Key: string; Value: string }[],
      publiclyAccessible: p.get('PubliclyAccessible') === 'true',
      securityGroups: readList(p, 'VpcSecurityGroupIds.VpcSecurityGroupId'),
      subnetGroup: p.get('DBSubnetGroupName') ?? undefined,
      parameterGroup: p.get('DBParameterGroupName') ?? undefined,
      restoreTime,
      snapshot,
      server: undefined,
      serverStopped: false,
      loadError: undefined,
      pollsInState: 0,
      isSource: false,
      ready: Promise.resolve(),
      readyDone: false,
      stopping: undefined,
    };
    if (this.#failNext) {
      inst.failAs = this.#failNext;
      this.#failNext = undefined;
    }
    inst.ready = (async () => {
      try {
        const server = await startMariadb(this.#opts.instanceArgs ? { extraArgs: this.#opts.instanceArgs } : {});
        inst.server = server;
        await run('mariadb', ['--no-defaults', `--socket=${server.socket}`, '--user=root'], { stdinFile: snapshot.file });
      } catch (error) {
        inst.loadError = error;
      } finally {
        inst.readyDone = true;
      }
    })();
    this.#track(inst.ready);
    this.#instances.set(targetId, inst);
    this.history.push(inst);
    return [this.#instanceXml(inst)];
  }

  #delete(p: URLSearchParams): XmlNode[] {
    const id = p.get('DBInstanceIdentifier') ?? '';
    const inst = this.#instances.get(id);
    if (this.#denyDeletes) {
      throw new QueryFault(403, 'AccessDenied', `User: arn:aws:iam::${ACCOUNT}:user/restorer is not authorized to perform: rds:DeleteDBInstance on resource: arn:aws:rds:${this.region}:${ACCOUNT}:db:${id}`);
    }
    if (!inst) throw new QueryFault(404, 'DBInstanceNotFound', `DBInstance ${id} not found.`);
    const skip = p.get('SkipFinalSnapshot') === 'true';
    if (!skip && !p.get('FinalDBSnapshotIdentifier')) {
      throw new QueryFault(400, 'InvalidParameterCombination', 'FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.');
    }
    if (!skip) throw new QueryFault(400, 'InvalidParameterValue', 'the fake does not take final snapshots');
    if (inst.isSource) throw new QueryFault(400, 'InvalidParameterCombination', 'Cannot delete protected DB Instance, please disable deletion protection and try again.');
    if (inst.status === 'deleting') throw new QueryFault(400, 'InvalidDBInstanceState', `Instance ${id} is already being deleted.`);
    if (inst.status === 'creating' && this.rejectDeleteWhileCreating) {
      throw new QueryFault(400, 'InvalidDBInstanceState', `Instance ${id} is currently creating - it cannot be deleted now.`);
    }
    inst.status = 'deleting';
    inst.pollsInState = 0;
    inst.stopping = inst.ready.then(async () => {
      await inst.server?.stop();
      inst.serverStopped = true;
    });
    this.#track(inst.stopping);
    return [this.#instanceXml(inst)];
  }

  #track(promise: Promise<unknown> | undefined): void {
    if (!promise) return;
    const p = promise.catch(() => undefined);
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  #arn(inst: FakeInstance): string {
    return `arn:aws:rds:${this.region}:${ACCOUNT}:db:${inst.identifier}`;
  }

  #instanceXml(inst: FakeInstance): XmlNode {
    const hasEndpoint = inst.server !== undefined && (inst.status === 'available' || inst.status === 'backing-up' || inst.isSource);
    return el('DBInstance', [
      el('DBInstanceIdentifier', inst.identifier),
      el('DBInstanceClass', inst.instanceClass),
      el('Engine', 'mariadb'),
      el('EngineVersion', '10.11.19'),
      el('DBInstanceStatus', inst.status),
      el('MasterUsername', 'root'),
      hasEndpoint ? el('Endpoint', [el('Address', '127.0.0.1'), el('Port', inst.server?.port), el('HostedZoneId', 'Z2R2ITUGPM61AM')]) : el('Endpoint', undefined),
      el('AllocatedStorage', 20),
      el('InstanceCreateTime', inst.createdAt),
      el('PreferredBackupWindow', '03:00-03:30'),
      el('BackupRetentionPeriod', inst.isSource ? 7 : 0),
      el('VpcSecurityGroups', inst.securityGroups.map((g) => el('VpcSecurityGroupMembership', [el('VpcSecurityGroupId', g), el('Status', 'active')]))),
      el('DBParameterGroups', inst.parameterGroup ? [el('DBParameterGroup', [el('DBParameterGroupName', inst.parameterGroup), el('ParameterApplyStatus', 'in-sync')])] : []),
      inst.subnetGroup ? el('DBSubnetGroup', [el('DBSubnetGroupName', inst.subnetGroup), el('SubnetGroupStatus', 'Complete')]) : el('DBSubnetGroup', undefined),
      el('MultiAZ', false),
      el('PubliclyAccessible', inst.publiclyAccessible),
      el('StorageEncrypted', true),
      el('DBInstanceArn', this.#arn(inst)),
      el('DeletionProtection', inst.isSource),
      el('LatestRestorableTime', inst.isSource ? this.#window()?.latest : undefined),
      el('TagList', inst.tags.map((t) => el('Tag', [el('Key', t.Key), el('Value', t.Value)]))),
    ]);
  }
}

export class QueryFault extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export async function startFakeRds(opts: FakeRdsOptions): Promise<FakeRds> {
  const fake = new FakeRds(opts);
  await fake.start();
  return fake;
}

/** Runs a MariaDB client program (no password on its command line: root over the socket has none). */
async function run(program: string, args: string[], io: { stdoutFile?: string; stdinFile?: string }): Promise<void> {
  const child = spawn(program, args, { stdio: ['pipe', io.stdoutFile ? 'pipe' : 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  const out = io.stdoutFile ? createWriteStream(io.stdoutFile) : undefined;
  if (out) child.stdout?.pipe(out);
  if (io.stdinFile) createReadStream(io.stdinFile).pipe(child.stdin!);
  else child.stdin?.end();
  const code = await done;
  if (out) await new Promise<void>((resolve) => (out.writableFinished ? resolve() : out.once('finish', () => resolve())));
  if (code !== 0) throw new Error(`${program} exited with ${code}: ${stderr.trim()}`);
}
