/**
 * Users and grants, for dumps that ask for them (`users: true` in a schedule): every account but
 * the server's own (root, mariadb.sys, mysql, PUBLIC), as `CREATE USER IF NOT EXISTS` with its
 * password hash and its `GRANT`s, so a disaster-recovery server can be logged into as before.
 * Roles are accounts of their own and come along; default roles are set by the grants.
 */
import type { DbSession } from './connection.js';

export const USERS_FILE = 'users.sql';
const SYSTEM_ACCOUNTS = new Set(['root', 'mariadb.sys', 'mysql', 'PUBLIC', 'mysql.sys', 'mysql.session', 'mysql.infoschema']);

export async function readUsersSql(s: DbSession): Promise<{ sql: string; accounts: number }> {
  const [rows] = (await s.q.query('SELECT User AS u, Host AS h FROM mysql.user ORDER BY User, Host')) as unknown as [{ u: string; h: string }[]];
  const lines: string[] = [];
  let accounts = 0;
  for (const { u, h } of rows) {
    if (SYSTEM_ACCOUNTS.has(u) || u === '') continue;
    const account = `${quote(u)}@${quote(h)}`;
    const [created] = (await s.q.query(`SHOW CREATE USER ${account}`)) as unknown as [Record<string, string>[]];
    const create = Object.values(created[0] ?? {})[0];
    if (!create) continue;
    lines.push(`${create.replace(/^CREATE USER /, 'CREATE USER IF NOT EXISTS ')};`);
    const [grants] = (await s.q.query(`SHOW GRANTS FOR ${account}`)) as unknown as [Record<string, string>[]];
    for (const g of grants) lines.push(`${Object.values(g)[0]};`);
    accounts++;
  }
  return { sql: lines.length ? `${lines.join('\n')}\n` : '', accounts };
}

function quote(name: string): string {
  return `'${name.replace(/\\\\/g, '\\\\\\\\').replace(/'/g, "\\\\'")}'`;
}
