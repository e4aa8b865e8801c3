/**
 * The AWS Query protocol's wire format, as @aws-sdk/client-rds 3.1169 reads it (see
 * notes/dependency-findings.md §4): form-encoded requests, `<Action>Response/<Action>Result` XML in
 * the 2014-10-31 namespace, and `<ErrorResponse><Error><Type/><Code/><Message/></Error>` errors.
 */
export const RDS_XMLNS = 'http://rds.amazonaws.com/doc/2014-10-31/';

/** An XML element tree: a string/number/boolean/Date leaf, a list of children, or nothing (omitted). */
export type XmlValue = string | number | boolean | Date | undefined | null | XmlNode[];
export interface XmlNode {
  readonly name: string;
  readonly value: XmlValue;
}

export const el = (name: string, value: XmlValue): XmlNode => ({ name, value });

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] as string);
}

export function renderXml(node: XmlNode): string {
  const { name, value } = node;
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return `<${name}>${value.map(renderXml).join('')}</${name}>`;
  const text = value instanceof Date ? value.toISOString() : String(value);
  return `<${name}>${escapeXml(text)}</${name}>`;
}

export function successXml(action: string, result: XmlNode[], requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${RDS_XMLNS}">` +
    renderXml(el(`${action}Result`, result)) +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`
  );
}

export function errorXml(code: string, message: string, requestId: string, type: 'Sender' | 'Receiver' = 'Sender'): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${RDS_XMLNS}"><Error><Type>${type}</Type>` +
    `<Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error>` +
    `<RequestId>${requestId}</RequestId></ErrorResponse>`
  );
}

/** `Tags.Tag.1.Key=a&Tags.Tag.1.Value=b` → [{Key:'a',Value:'b'}]; `Ids.Id.1=x` → ['x'] (Query lists are Name.Member.N). */
export function readList(params: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params.has(`${prefix}.${i}`); i++) out.push(params.get(`${prefix}.${i}`) as string);
  return out;
}

export function readStructList(params: URLSearchParams, prefix: string, fields: readonly string[]): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (let i = 1; fields.some((f) => params.has(`${prefix}.${i}.${f}`)); i++) {
    const item: Record<string, string> = {};
    for (const f of fields) {
      const v = params.get(`${prefix}.${i}.${f}`);
      if (v !== null) item[f] = v;
    }
    out.push(item);
  }
  return out;
}
