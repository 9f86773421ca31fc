// The VS Code (and Cursor, VSCodium) extension: starts `smctl lsp` for files in profile
// roots and SkillMeat collections, shows the drift count in the status bar, and offers
// the server's commands in the palette. Everything else (diagnostics, hover, code
// actions) comes from the server through vscode-languageclient.

import * as vscode from 'vscode';
import { ExecuteCommandRequest, LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';

import { DriftStatus, documentSelector, executeParams, paletteCommands, smctlPath, statusText } from './logic';

let client: LanguageClient | undefined;
let status: vscode.StatusBarItem;

function settings() {
  const c = vscode.workspace.getConfiguration('skillmeat');
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return {
    smctl: smctlPath(c.get<string>('smctlPath'), folder),
    roots: c.get<string[]>('profileRoots') ?? [],
  };
}

function show(s: DriftStatus | undefined) {
  const t = statusText(s);
  status.text = t.text;
  status.tooltip = t.tooltip;
  status.backgroundColor = t.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  status.show();
}

async function start(context: vscode.ExtensionContext) {
  const { smctl, roots } = settings();
  const server: ServerOptions = { command: smctl, args: ['lsp'] };
  const options: LanguageClientOptions = {
    documentSelector: documentSelector(roots),
    outputChannelName: 'SkillMeat',
  };
  client = new LanguageClient('skillmeat', 'SkillMeat', server, options);
  context.subscriptions.push(client.onNotification('skillmeat/status', (s: DriftStatus) => show(s)));
  show(undefined);
  try {
    await client.start();
  } catch (e) {
    void vscode.window.showErrorMessage(`SkillMeat: cannot start \`${smctl} lsp\` (${e}); set skillmeat.smctlPath.`);
  }
}

async function stop() {
  const c = client;
  client = undefined;
  if (c !== undefined) {
    await c.stop();
  }
}

export async function activate(context: vscode.ExtensionContext) {
  status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  status.command = 'skillmeat.showDriftList';
  context.subscriptions.push(status);
  for (const name of Object.keys(paletteCommands)) {
    context.subscriptions.push(
      vscode.commands.registerCommand(name, async () => {
        if (client === undefined) {
          void vscode.window.showWarningMessage('SkillMeat: the language server is not running.');
          return;
        }
        try {
          const uri = vscode.window.activeTextEditor?.document.uri.toString();
          await client.sendRequest(ExecuteCommandRequest.type, executeParams(name, uri));
        } catch (e) {
          void vscode.window.showErrorMessage(`SkillMeat: ${e instanceof Error ? e.message : e}`);
        }
      }),
    );
  }
  context.subscriptions.push(
    vscode.commands.registerCommand('skillmeat.showDriftList', () =>
      vscode.commands.executeCommand('workbench.actions.view.problems'),
    ),
    vscode.commands.registerCommand('skillmeat.restartServer', async () => {
      await stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('skillmeat')) {
        await stop();
        await start(context);
      }
    }),
  );
  await start(context);
}

export function deactivate(): Thenable<void> | undefined {
  return stop();
}
