// The extension's own logic, with no dependency on the `vscode` module so Node's test
// runner can check it (test/logic.test.ts): the status bar text, which files the server
// is started for, the smctl path setting, and the commands' arguments.

import * as os from 'node:os';
import * as path from 'node:path';

/** The `skillmeat/status` notification of `smctl lsp`. */
export interface DriftStatus {
  connected: boolean;
  drifted: number;
  workspaceDrifted: number;
}

/** What the status bar shows. */
export interface StatusText {
  text: string;
  tooltip: string;
  /** Whether the item asks for attention (drift, or the daemon away). */
  warning: boolean;
}

/** The status bar item for a status; `undefined` before the server said anything. */
export function statusText(s: DriftStatus | undefined): StatusText {
  if (s === undefined) {
    return { text: '$(sync~spin) skillmeat', tooltip: 'Starting smctl lsp…', warning: false };
  }
  if (!s.connected) {
    return {
      text: '$(debug-disconnect) skillmeat: offline',
      tooltip: 'skillmeatd is not answering; drift diagnostics are off until it is back (`skillmeatd start`).',
      warning: true,
    };
  }
  const n = s.workspaceDrifted;
  if (n === 0) {
    return { text: '$(check) skillmeat', tooltip: 'Every deployed artifact in this workspace is in sync.', warning: false };
  }
  const others = s.drifted - s.workspaceDrifted;
  const tooltip =
    `${n} drifted artifact${n === 1 ? '' : 's'} in this workspace` +
    (others > 0 ? ` (${others} more elsewhere)` : '') +
    '. Click for the list.';
  return { text: `$(warning) skillmeat: ${n} drifted`, tooltip, warning: true };
}

/** The smctl executable from the `skillmeat.smctlPath` setting. */
export function smctlPath(setting: string | undefined, workspaceFolder: string | undefined, home = os.homedir()): string {
  let p = (setting ?? '').trim();
  if (p === '') {
    return 'smctl';
  }
  if (p === '~' || p.startsWith('~/')) {
    p = path.join(home, p.slice(1));
  }
  if (workspaceFolder !== undefined) {
    p = p.split('${workspaceFolder}').join(workspaceFolder);
  }
  return p;
}

/** A document filter (as vscode-languageclient takes it). */
export interface Filter {
  scheme: string;
  pattern: string;
}

/** The files the server is started for: every profile root, and SkillMeat's collections. */
export function documentSelector(profileRoots: readonly string[]): Filter[] {
  const roots = profileRoots
    .map((r) => r.trim().replace(/^\/+|\/+$/g, ''))
    .filter((r) => r !== '' && !/[{}*?[\]]/.test(r));
  const filters = roots.map((r) => ({ scheme: 'file', pattern: `**/${r}/**` }));
  filters.push({ scheme: 'file', pattern: '**/.skillmeat-deployed.toml' });
  filters.push({ scheme: 'file', pattern: '**/.skillmeat/collections/**' });
  return filters;
}

/** The commands the palette offers, each the server command it runs. */
export const paletteCommands: Readonly<Record<string, string>> = {
  'skillmeat.pullFile': 'skillmeat.pull',
  'skillmeat.pushFile': 'skillmeat.push',
  'skillmeat.mergeFile': 'skillmeat.merge',
  'skillmeat.diffFile': 'skillmeat.showDiff',
  'skillmeat.undoLast': 'skillmeat.undo',
  'skillmeat.snapshotNow': 'skillmeat.snapshot',
};

/** The `workspace/executeCommand` parameters for a palette command on a file. */
export function executeParams(paletteCommand: string, fileUri: string | undefined): { command: string; arguments: unknown[] } {
  const command = paletteCommands[paletteCommand];
  if (command === undefined) {
    throw new Error(`unknown command ${paletteCommand}`);
  }
  if (command === 'skillmeat.undo') {
    return { command, arguments: [{}] };
  }
  if (fileUri === undefined) {
    throw new Error('open a file of a SkillMeat artifact first');
  }
  return { command, arguments: [{ uri: fileUri }] };
}
