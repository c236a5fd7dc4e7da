/**
 * `check --format=sarif`: SARIF 2.1.0, what GitHub code scanning (and other viewers) read.
 * One rule per finding code, derived from the findings themselves (a new code needs no change
 * here); each result at a relative URI and region, with a partial fingerprint that survives a
 * line inserted above it (fingerprint.ts).
 * https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
 *
 * @module
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Finding } from '../lint.ts';
import { ruleDescription } from './rules.ts';

export const SARIF_SCHEMA = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/schemas/sarif-schema-2.1.0.json';

/** The tool as SARIF names it. */
export interface SarifTool {
  name: string;
  version: string;
  /** Absolute URL of the tool's documentation. */
  informationUri: string;
  /** Absolute URL of the page that lists every finding code (docs/errors.md#check-findings). */
  helpUri: string;
}

const LEVEL = { error: 'error', warning: 'warning', note: 'note' } as const;

/** The key of `partialFingerprints`: ours, versioned, so a later change of recipe gets a new key. */
export const FINGERPRINT_KEY = 'sqlMigrateFinding/v1';

/**
 * A finding's file as a URI reference: relative paths stay relative, each segment escaped but
 * for the sub-delimiters a path may hold as they are (`a,b/…`); `:` stays escaped, since in a
 * first segment it would read as a scheme. Absolute paths become file: URLs.
 */
export function fileUri(file: string): string {
  if (isAbsolute(file)) return pathToFileURL(file).href;
  const segment = (s: string) =>
    encodeURIComponent(s).replace(/%(2C|3B|3D|40|24|26|2B)/g, (e) => decodeURIComponent(e));
  return file.split(/[\\/]/).map(segment).join('/');
}

/** The SARIF log of one `check` run: `fingerprints[i]` belongs to `findings[i]`. */
export function sarifLog(findings: readonly Finding[], fingerprints: readonly string[], tool: SarifTool): object {
  const codes = [...new Set(findings.map((f) => f.code))].sort();
  const rules = codes.map((code) => {
    const severities = new Set(findings.filter((f) => f.code === code).map((f) => f.severity));
    const level = severities.has('error') ? 'error' : severities.has('warning') ? 'warning' : 'note';
    return {
      id: code,
      name: code,
      shortDescription: { text: ruleDescription(code) },
      helpUri: tool.helpUri,
      defaultConfiguration: { level },
    };
  });
  const results = findings.map((f, i) => {
    const region =
      f.line === undefined
        ? undefined
        : { startLine: f.line, ...(f.column === undefined ? {} : { startColumn: f.column }) };
    return {
      ruleId: f.code,
      ruleIndex: codes.indexOf(f.code),
      level: LEVEL[f.severity],
      message: { text: f.message },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: fileUri(f.file), ...(isAbsolute(f.file) ? {} : { uriBaseId: '%SRCROOT%' }) },
            ...(region ? { region } : {}),
          },
        },
      ],
      partialFingerprints: { [FINGERPRINT_KEY]: fingerprints[i] as string },
      ...(f.subject || f.on
        ? { properties: { ...(f.subject ? { subject: f.subject } : {}), ...(f.on ? { on: f.on } : {}) } }
        : {}),
    };
  });
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: { name: tool.name, version: tool.version, informationUri: tool.informationUri, rules },
        },
        results,
        columnKind: 'unicodeCodePoints',
      },
    ],
  };
}
