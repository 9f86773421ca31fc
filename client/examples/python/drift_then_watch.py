#!/usr/bin/env python3
"""Ask skillmeatd what has drifted, then follow changes as they happen.

A plain gRPC client: Google's grpcio with the channel's defaults, and stubs generated from
the daemon's proto. From the repository root:

    python3 -m venv .venv && . .venv/bin/activate
    pip install grpcio grpcio-tools
    python -m grpc_tools.protoc -I proto --python_out=client/examples/python \\
        --grpc_python_out=client/examples/python proto/skillmeat/daemon/v1/daemon.proto
    python client/examples/python/drift_then_watch.py [--project DIR] [--events N]

It prints every artifact's drift (GetDrift), then one line per drift event (Watch) until
interrupted, or until N events with --events. Watch resumes from the cursor GetDrift
answered with, so no change made in between is missed.

The socket is found as smctl finds it: $SKILLMEATD_SOCKET, else
$XDG_RUNTIME_DIR/skillmeatd/skillmeatd.sock, else skillmeatd.sock in the state directory
($SKILLMEATD_STATE_DIR, default ~/.skillmeat/daemon).
"""
import argparse
import os
import sys

import grpc

from skillmeat.daemon.v1 import daemon_pb2, daemon_pb2_grpc


def socket_path():
    if os.environ.get("SKILLMEATD_SOCKET"):
        return os.environ["SKILLMEATD_SOCKET"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "skillmeatd", "skillmeatd.sock")
    home = os.environ.get("SKILLMEAT_HOME") or os.path.expanduser("~/.skillmeat")
    state = os.environ.get("SKILLMEATD_STATE_DIR") or os.path.join(home, "daemon")
    return os.path.join(state, "skillmeatd.sock")


def drift_name(value):
    """DRIFT_TYPE_IN_SYNC -> "in sync"."""
    name = daemon_pb2.DriftType.Name(value)
    return name.removeprefix("DRIFT_TYPE_").lower().replace("_", " ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", default="", help="one project folder (default: all)")
    ap.add_argument("--events", type=int, default=0, help="stop after N events")
    args = ap.parse_args()

    # No options: grpcio's defaults, as any client would use them.
    channel = grpc.insecure_channel("unix:" + socket_path())
    daemon = daemon_pb2_grpc.SkillmeatDaemonStub(channel)

    drift = daemon.GetDrift(
        daemon_pb2.GetDriftRequest(project=args.project, include_in_sync=True), timeout=30
    )
    print(f"drift of {len(drift.artifacts)} artifacts (cursor {drift.cursor}):")
    for a in drift.artifacts:
        print(f"  {a.name:24} {a.artifact_type:10} {drift_name(a.drift_type)}")

    request = daemon_pb2.WatchRequest(
        since_cursor=drift.cursor, projects=[args.project] if args.project else []
    )
    print("watching for changes (Ctrl-C to stop)", flush=True)
    stream = daemon.Watch(request)
    seen = 0
    try:
        for message in stream:
            kind = message.WhichOneof("message")
            if kind == "event":
                e = message.event
                change = f"{drift_name(e.old_drift)} -> {drift_name(e.new_drift)}"
                print(f"  {e.name:24} {e.artifact_type:10} {change}", flush=True)
                seen += 1
            elif kind == "resync":
                # Fell behind or resumed too late: the full state comes instead.
                print(f"  resync ({message.resync.reason}): {len(message.resync.artifacts)} artifacts")
            if args.events and seen >= args.events:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stream.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
