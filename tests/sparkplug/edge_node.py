"""A Sparkplug B edge node built on pysparkplug, run as a separate process from its own virtual
environment (pysparkplug pins paho-mqtt<2, which minewatch's environment cannot hold).

It imports nothing from minewatch: the payloads it sends are pysparkplug's encoding, so the
tests check minewatch against an implementation written by someone else.

    python edge_node.py --broker 127.0.0.1:1883 --group 141024010001 --edge 001 \
        --plan '{"metrics": [...], "data": [...]}' [--by-alias] [--skip-seq-before N]
        [--die-after N] [--linger S] [--wait-for PATH]

``plan``: ``metrics`` is a list of ``{"name", "datatype" (a pysparkplug DataType name),
"alias" (optional), "value", "t_ms"}`` born in the NBIRTH; ``data`` a list of
``{"t_ms", "values": {name: value}}``, one NDATA each. The process prints one JSON line per
thing it does (``birth``, ``data``, ``skip``, ``rebirth_request``, ``dying``, ``done``).
On an NCMD ``Node Control/Rebirth = true`` it rebirths the way pysparkplug can: disconnect
and connect again (a new NBIRTH with the next bdSeq). ``--die-after N`` ends the process
without an MQTT DISCONNECT after N NDATA messages, so the broker publishes its will (NDEATH).
``--wait-for PATH`` holds the data after the birth until PATH exists (``waiting`` is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import pysparkplug as spb

_SAYING = threading.Lock()


def say(event: str, **fields: object) -> None:
    """One JSON line per event. Called from the main thread and from paho's: one write under a
    lock, or two lines can interleave (print writes the text and the newline separately)."""
    line = json.dumps({"event": event, **fields}) + "\n"
    with _SAYING:
        sys.stdout.write(line)
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True, help="host:port")
    parser.add_argument("--group", required=True)
    parser.add_argument("--edge", required=True)
    parser.add_argument("--plan", required=True, help="JSON: metrics and data")
    parser.add_argument("--by-alias", action="store_true", help="NDATA metrics by alias only")
    parser.add_argument(
        "--skip-seq-before",
        type=int,
        default=None,
        metavar="N",
        help="leave out one seq number before the N-th NDATA (0-based)",
    )
    parser.add_argument(
        "--die-after",
        type=int,
        default=None,
        metavar="N",
        help="after N NDATA, exit without DISCONNECT (the will is published)",
    )
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between NDATA")
    parser.add_argument(
        "--linger",
        type=float,
        default=10.0,
        help="seconds to stay connected after the data, answering rebirths",
    )
    parser.add_argument("--wait-for", default=None, metavar="PATH",
                        help="after the birth, send the data only once PATH exists")  # fmt: skip
    args = parser.parse_args()
    host, port = args.broker.rsplit(":", 1)
    plan = json.loads(args.plan)

    datatypes = {m["name"]: spb.DataType[m["datatype"]] for m in plan["metrics"]}
    aliases = {m["name"]: m.get("alias") for m in plan["metrics"]}
    born = [
        spb.Metric(timestamp=m.get("t_ms", spb.get_current_timestamp()), name=m["name"],
                   datatype=datatypes[m["name"]], value=m["value"], alias=m.get("alias"))
        for m in plan["metrics"]
    ]  # fmt: skip

    rebirth = threading.Event()

    def on_command(node: spb.EdgeNode, message: spb.Message) -> None:
        for metric in message.payload.metrics:
            if metric.name == "Node Control/Rebirth" and metric.value is True:
                say("rebirth_request")
                rebirth.set()

    client = spb.Client(client_id=f"edge-{args.group}-{args.edge}-{os.getpid()}")
    node = spb.EdgeNode(args.group, args.edge, born, client=client, cmd_callback=on_command)
    node.connect(host, port=int(port), blocking=False)
    time.sleep(0.3)  # the NBIRTH goes out from paho's thread once connected
    say("birth")
    if args.wait_for is not None:
        say("waiting")
        while not os.path.exists(args.wait_for):
            time.sleep(0.05)

    ndata_topic = spb.Topic(
        message_type=spb.MessageType.NDATA, group_id=args.group, edge_node_id=args.edge
    )
    for index, item in enumerate(plan["data"]):
        if args.skip_seq_before == index:
            say("skip", seq=node._seq)  # pysparkplug's counter: taking one leaves a gap
        metrics = [
            spb.Metric(timestamp=item["t_ms"], name=name, datatype=datatypes[name], value=value,
                       alias=aliases[name])
            for name, value in item["values"].items()
        ]  # fmt: skip
        if args.by_alias:
            compact = tuple(
                spb.Metric(timestamp=m.timestamp, name=None, datatype=m.datatype, value=m.value,
                           alias=m.alias)
                for m in metrics
            )  # fmt: skip
            payload = spb.NData(timestamp=spb.get_current_timestamp(), seq=node._seq,
                                metrics=compact)  # fmt: skip
            client.publish(spb.Message(topic=ndata_topic, payload=payload, qos=spb.QoS.AT_MOST_ONCE,
                                       retain=False))  # fmt: skip
            node._metrics.update({m.name: m for m in metrics})  # what a rebirth will carry
        else:
            node.update(metrics)
        say("data", index=index)
        if args.die_after is not None and index + 1 >= args.die_after:
            time.sleep(0.3)  # let paho's thread write the last QoS 0 message
            say("dying")
            os._exit(0)  # no DISCONNECT: the broker publishes the will, an NDEATH
        time.sleep(args.interval)

    deadline = time.monotonic() + args.linger
    while time.monotonic() < deadline:
        if rebirth.wait(0.05):
            rebirth.clear()
            node.disconnect()
            node.connect(host, port=int(port), blocking=False)
            time.sleep(0.3)
            say("birth")
    say("done")
    node.disconnect()


if __name__ == "__main__":
    sys.exit(main())
