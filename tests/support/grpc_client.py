#!/usr/bin/env python3
"""A third-party gRPC client for skillmeatd: Google's grpcio, stubs generated from proto/.

Connects over the daemon's Unix socket, checks standard health (grpc.health.v1) and
server reflection, calls Status and GetDrift, optionally subscribes to Watch, and prints
one JSON object:

    {"health": {"": "SERVING", "skillmeat.daemon.v1.SkillmeatDaemon": "SERVING"},
     "reflection": {"services": [...], "service_file": "..."},
     "status": {...}, "drift": {...}, "events": [...]}

Usage: grpc_client.py --stubs DIR --socket PATH [--project DIR] [--watch N]

With --watch N it subscribes after the Status call, from Status's cursor (since_cursor),
so an event that happens between the two calls is replayed rather than lost; it says
"watching since CURSOR" on stderr (a caller may make its change then) and collects N drift
events, skipping heartbeats.
"""
import argparse
import json
import sys

SERVICE = "skillmeat.daemon.v1.SkillmeatDaemon"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stubs", required=True, help="folder with the generated stubs")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--project", default="")
    ap.add_argument("--watch", type=int, default=0,
                    help="also subscribe to Watch and collect this many events")
    ap.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc
    from google.protobuf import json_format
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from skillmeat.daemon.v1 import daemon_pb2, daemon_pb2_grpc

    def as_dict(msg):
        return json_format.MessageToDict(msg, preserving_proto_field_name=True)

    # The channel's defaults, as any user's: grpc C-core sends the socket path,
    # percent-encoded, as HTTP/2's :authority, and the daemon accepts it.
    channel = grpc.insecure_channel("unix:" + args.socket)
    grpc.channel_ready_future(channel).result(timeout=args.timeout)

    health = health_pb2_grpc.HealthStub(channel)
    out = {"health": {}}
    for name in ("", SERVICE):
        r = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=args.timeout)
        out["health"][name] = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

    # Server reflection, as generic tools use it: which services are there, and the
    # schema of one method, without our stubs.
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )
    reflection = ProtoReflectionDescriptorDatabase(channel)
    out["reflection"] = {
        "services": sorted(reflection.get_services()),
        "service_file": reflection.FindFileContainingSymbol(SERVICE).name,
    }

    stub = daemon_pb2_grpc.SkillmeatDaemonStub(channel)
    out["status"] = as_dict(stub.Status(daemon_pb2.StatusRequest(), timeout=args.timeout))
    drift = stub.GetDrift(
        daemon_pb2.GetDriftRequest(project=args.project, include_in_sync=True),
        timeout=args.timeout,
    )
    out["drift"] = as_dict(drift)

    if args.watch:
        # Resume from the cursor Status gave: nothing between the calls is missed.
        since = int(out["status"].get("cursor", "0"))
        stream = stub.Watch(
            daemon_pb2.WatchRequest(since_cursor=since, heartbeat_ms=200),
            timeout=args.timeout,
        )
        sys.stderr.write(f"watching since {since}\n")
        sys.stderr.flush()
        events = []
        for message in stream:
            if message.WhichOneof("message") != "event":
                continue
            events.append(as_dict(message.event))
            if len(events) >= args.watch:
                stream.cancel()
                break
        out["watch_since"] = since
        out["events"] = events

    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
