/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1/localhost, made with
 * the openssl command, so tests can run real TLS with verification (like the RDS CA bundle).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TlsCerts {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** mariadbd arguments that serve this certificate and refuse plain TCP */
  readonly serverArgs: string[];
}

export async function makeTlsCerts(dir: string): Promise<TlsCerts> {
  const p = (name: string) => join(dir, name);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=mysql-archiver test CA', '-keyout', p('ca.key'), '-out', p('ca.pem')]);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', p('server.key'), '-out', p('server.csr')]);
  await writeFile(p('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p('san.ext'), '-out', p('server.pem')]);
  return {
    caFile: p('ca.pem'),
    certFile: p('server.pem'),
    keyFile: p('server.key'),
    serverArgs: [`--ssl-ca=${p('ca.pem')}`, `--ssl-cert=${p('server.pem')}`, `--ssl-key=${p('server.key')}`, '--require-secure-transport=ON'],
  };
}
