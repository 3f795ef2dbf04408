#!/usr/bin/env python3
"""Measure a real Redis 7.0.15 Sentinel failover on loopback.

One master and two replicas (replicaof), three sentinels (quorum 2,
down-after-milliseconds 5000, failover-timeout 10000, parallel-syncs 1),
all on 127.0.0.1 with ports of their own; the master is killed with
SIGKILL once the replicas are in sync and every sentinel knows the other
two and both replicas. Times are taken from the kill by polling every
20 ms: `ROLE` of the replicas (the promotion: a replica answering
`master`) and `SENTINEL get-master-addr-by-name` of each sentinel (the
+switch-master it applied). The sentinels' logs give +sdown, +odown and
+switch-master to the millisecond.

    python3 tools/sentinel_failover_bench.py [TRIALS] [OUT.json]

Stops only the processes it started. Needs `redis-server` (Debian's
build runs Sentinel with `--sentinel`).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BASE = 7601
SENTINEL_BASE = 27601


def resp(port, *args, timeout=0.5):
    """Send one command, return the reply as Python values (None on error)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return parse(f)
    except OSError:
        return None


def parse(f):
    line = f.readline()
    if not line:
        return None
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        return Exception(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if t == b"*":
        n = int(rest)
        return [parse(f) for _ in range(n)] if n >= 0 else None
    return None


def start(args, log):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def wait_until(pred, limit=30.0):
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def trial(k, workdir):
    procs = []
    d = os.path.join(workdir, f"t{k}")
    os.makedirs(d)
    try:
        for i in range(3):
            port = BASE + i
            args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", d,
                    "--dbfilename", f"dump{i}.rdb", "--repl-diskless-sync-delay", "0"]
            if i > 0:
                args += ["--replicaof", "127.0.0.1", str(BASE)]
            procs.append(start(args, open(os.path.join(d, f"node{i}.log"), "w")))
        wait_until(lambda: all(resp(BASE + i, "PING") == "PONG" for i in range(3)))
        wait_until(lambda: all("master_link_status:up" in (resp(BASE + i, "INFO", "replication") or "")
                               for i in (1, 2)))
        for j in range(3):
            conf = os.path.join(d, f"sentinel{j}.conf")
            with open(conf, "w") as c:
                c.write(f"port {SENTINEL_BASE + j}\nbind 127.0.0.1\ndir {d}\n"
                        f"sentinel monitor m 127.0.0.1 {BASE} 2\n"
                        "sentinel down-after-milliseconds m 5000\n"
                        "sentinel failover-timeout m 10000\n"
                        "sentinel parallel-syncs m 1\n")
            procs.append(start(["redis-server", conf, "--sentinel"],
                               open(os.path.join(d, f"sentinel{j}.log"), "w")))

        def discovered():
            for j in range(3):
                m = resp(SENTINEL_BASE + j, "SENTINEL", "master", "m")
                if not isinstance(m, list):
                    return False
                kv = dict(zip(m[::2], m[1::2]))
                if kv.get("num-other-sentinels") != "2" or kv.get("num-slaves") != "2":
                    return False
            return True

        if not wait_until(discovered, 60):
            raise RuntimeError("sentinels did not discover each other")
        time.sleep(2)
        procs[0].send_signal(signal.SIGKILL)
        killed = time.time()
        promoted = {}
        switched = {}
        while time.time() - killed < 40 and (len(promoted) < 1 or len(switched) < 3):
            now = time.time() - killed
            for i in (1, 2):
                r = resp(BASE + i, "ROLE", timeout=0.2)
                if isinstance(r, list) and r and r[0] == "master" and i not in promoted:
                    promoted[i] = now
            for j in range(3):
                r = resp(SENTINEL_BASE + j, "SENTINEL", "get-master-addr-by-name", "m", timeout=0.2)
                if isinstance(r, list) and r[1] != str(BASE) and j not in switched:
                    switched[j] = now
            time.sleep(0.02)
        time.sleep(3)
        roles = {i: (resp(BASE + i, "ROLE") or ["?"])[0] for i in (1, 2)}
        return {
            "promoted_s": min(promoted.values()) if promoted else None,
            "promoted_node": min(promoted, key=promoted.get) + 1 if promoted else None,
            "switch_master_s": sorted(switched.values()),
            "final_roles": roles,
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    out = sys.argv[2] if len(sys.argv) > 2 else None
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    workdir = tempfile.mkdtemp(prefix="sentinel-bench-")
    results = []
    try:
        for k in range(trials):
            r = trial(k, workdir)
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    doc = {
        "redis": version,
        "setup": "1 master + 2 replicas (replicaof) + 3 sentinels on 127.0.0.1; quorum 2, "
                 "down-after-milliseconds 5000, failover-timeout 10000, parallel-syncs 1; "
                 "master killed with SIGKILL; times from the kill, polled every 20 ms",
        "trials": results,
    }
    if out:
        with open(out, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
