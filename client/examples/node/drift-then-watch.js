#!/usr/bin/env node
// Ask skillmeatd what has drifted, then follow changes as they happen.
//
// A plain gRPC client: @grpc/grpc-js with the channel's defaults, the daemon's proto
// loaded at run time by @grpc/proto-loader (no code generation). In this folder:
//
//     npm ci
//     node drift-then-watch.js [--project DIR] [--events N]
//
// It prints every artifact's drift (GetDrift), then one line per drift event (Watch)
// until interrupted, or until N events with --events. Watch resumes from the cursor
// GetDrift answered with, so no change made in between is missed.
//
// The socket is found as smctl finds it: $SKILLMEATD_SOCKET, else
// $XDG_RUNTIME_DIR/skillmeatd/skillmeatd.sock, else skillmeatd.sock in the state
// directory ($SKILLMEATD_STATE_DIR, default ~/.skillmeat/daemon).
'use strict';

const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.join(__dirname, '..', '..', '..', 'proto');

function socketPath() {
  const env = process.env;
  if (env.SKILLMEATD_SOCKET) return env.SKILLMEATD_SOCKET;
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'skillmeatd', 'skillmeatd.sock');
  const home = env.SKILLMEAT_HOME || path.join(os.homedir(), '.skillmeat');
  return path.join(env.SKILLMEATD_STATE_DIR || path.join(home, 'daemon'), 'skillmeatd.sock');
}

// 'DRIFT_TYPE_IN_SYNC' -> 'in sync'
const driftName = (d) => d.replace(/^DRIFT_TYPE_/, '').toLowerCase().replace(/_/g, ' ');
const row = (name, type, what) => `  ${name.padEnd(24)} ${type.padEnd(10)} ${what}`;

function main() {
  const { values: args } = parseArgs({
    options: { project: { type: 'string', default: '' }, events: { type: 'string', default: '0' } },
  });
  const definition = protoLoader.loadSync('skillmeat/daemon/v1/daemon.proto', {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names as in the proto: since_cursor, include_in_sync
    longs: String, // uint64 cursors as strings, no precision lost
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const { SkillmeatDaemon } = grpc.loadPackageDefinition(definition).skillmeat.daemon.v1;
  // No options: grpc-js's defaults, as any client would use them.
  const daemon = new SkillmeatDaemon('unix:' + socketPath(), grpc.credentials.createInsecure());

  const deadline = new Date(Date.now() + 30_000);
  daemon.GetDrift({ project: args.project, include_in_sync: true }, { deadline }, (err, drift) => {
    if (err) {
      console.error(`GetDrift failed: ${err.message}`);
      process.exit(2);
    }
    console.log(`drift of ${drift.artifacts.length} artifacts (cursor ${drift.cursor}):`);
    for (const a of drift.artifacts) console.log(row(a.name, a.artifact_type, driftName(a.drift_type)));
    watch(daemon, drift.cursor, args.project, Number(args.events));
  });
}

function watch(daemon, cursor, project, maxEvents) {
  const stream = daemon.Watch({ since_cursor: cursor, projects: project ? [project] : [] });
  console.log('watching for changes (Ctrl-C to stop)');
  let seen = 0;
  stream.on('data', (message) => {
    if (message.message === 'event') {
      const e = message.event;
      console.log(row(e.name, e.artifact_type, `${driftName(e.old_drift)} -> ${driftName(e.new_drift)}`));
      seen += 1;
    } else if (message.message === 'resync') {
      // Fell behind or resumed too late: the full state comes instead.
      console.log(`  resync (${message.resync.reason}): ${message.resync.artifacts.length} artifacts`);
    }
    if (maxEvents && seen >= maxEvents) {
      stream.cancel();
      daemon.close();
    }
  });
  stream.on('error', (err) => {
    if (err.code === grpc.status.CANCELLED) return;
    console.error(`Watch failed: ${err.message}`);
    process.exit(2);
  });
}

main();
