// Unit tests of the extension's own logic (node --test).

import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { documentSelector, executeParams, smctlPath, statusText } from '../src/logic';

test('the status bar counts drift in the workspace and says when the daemon is away', () => {
  assert.equal(statusText(undefined).text, '$(sync~spin) skillmeat');
  const off = statusText({ connected: false, drifted: 3, workspaceDrifted: 1 });
  assert.equal(off.text, '$(debug-disconnect) skillmeat: offline');
  assert.ok(off.warning && off.tooltip.includes('skillmeatd start'));
  const some = statusText({ connected: true, drifted: 5, workspaceDrifted: 2 });
  assert.equal(some.text, '$(warning) skillmeat: 2 drifted');
  assert.match(some.tooltip, /^2 drifted artifacts in this workspace \(3 more elsewhere\)/);
  assert.equal(statusText({ connected: true, drifted: 1, workspaceDrifted: 1 }).tooltip, '1 drifted artifact in this workspace. Click for the list.');
  const none = statusText({ connected: true, drifted: 4, workspaceDrifted: 0 });
  assert.equal(none.text, '$(check) skillmeat');
  assert.equal(none.warning, false);
});

test('the smctl path setting expands ~ and ${workspaceFolder}', () => {
  assert.equal(smctlPath(undefined, undefined), 'smctl');
  assert.equal(smctlPath('  ', '/w'), 'smctl');
  assert.equal(smctlPath('~/bin/smctl', undefined, '/home/u'), '/home/u/bin/smctl');
  assert.equal(smctlPath('${workspaceFolder}/target/debug/smctl', '/w'), '/w/target/debug/smctl');
  assert.equal(smctlPath('/opt/smctl', '/w'), '/opt/smctl');
});

test('the server is started for profile roots, deployment files and collections', () => {
  const f = documentSelector(['.claude', '/.codex/', '', '**']);
  assert.deepEqual(
    f.map((x) => x.pattern),
    ['**/.claude/**', '**/.codex/**', '**/.skillmeat-deployed.toml', '**/.skillmeat/collections/**'],
  );
  assert.ok(f.every((x) => x.scheme === 'file'));
});

test('palette commands run the server command on the active file', () => {
  assert.deepEqual(executeParams('skillmeat.pullFile', 'file:///p/.claude/commands/a.md'), {
    command: 'skillmeat.pull',
    arguments: [{ uri: 'file:///p/.claude/commands/a.md' }],
  });
  assert.deepEqual(executeParams('skillmeat.undoLast', undefined), { command: 'skillmeat.undo', arguments: [{}] });
  assert.throws(() => executeParams('skillmeat.pushFile', undefined), /open a file/);
  assert.throws(() => executeParams('skillmeat.nothing', 'file:///x'), /unknown command/);
});
