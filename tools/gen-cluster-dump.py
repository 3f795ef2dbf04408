#!/usr/bin/env python3
"""Write a CLUSTER NODES dump of a Redis Cluster of M masters with one
replica each, slots split as `redis-cli --cluster create` splits them, one
node per host (10.0.h/256.h%256, as redsim generates addresses), config
epochs 1..M, node IDs the SHA-1 of the node's name. Used for
scenarios/dumps/1000-nodes.cluster-nodes.txt:

    tools/gen-cluster-dump.py 500 > scenarios/dumps/1000-nodes.cluster-nodes.txt
"""
import hashlib
import sys

SLOTS = 16384


def node_id(i):
    return hashlib.sha1(f"node-{i}".encode()).hexdigest()


def addr(i):
    h = i  # host number, 1-based
    return f"10.0.{h // 256}.{h % 256}:6379@16379"


def main():
    masters = int(sys.argv[1])
    per = SLOTS / masters
    first, cursor = 0, 0.0
    ranges = []
    for i in range(masters):
        last = int(cursor + per - 1 + 0.5)  # lround
        if last > SLOTS or i == masters - 1:
            last = SLOTS - 1
        last = max(last, first)
        ranges.append((first, last))
        first, cursor = last + 1, cursor + per
    pong = 1700000000000
    for i in range(1, masters + 1):
        a, b = ranges[i - 1]
        slots = f"{a}-{b}" if a != b else f"{a}"
        print(f"{node_id(i)} {addr(i)} master - 0 {pong} {i} connected {slots}")
    for i in range(1, masters + 1):
        r = masters + i
        print(f"{node_id(r)} {addr(r)} slave {node_id(i)} 0 {pong} {i} connected")


main()
