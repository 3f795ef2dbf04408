# The cache workload of scenarios/eviction-lfu.toml against a real Redis,
# for the README's eviction table: zipf(1.0) over 100k keys, 200k ops,
# 90 % GET (SET on miss), 10 % SET, 1000-byte values, half the keys with a
# 3600 s TTL, maxmemory 20mb. Prints the hit ratio, evicted keys and
# refused writes (with the error text).
#
#   redis-server --port 7379 --bind 127.0.0.1 --cluster-enabled yes \
#       --cluster-config-file /tmp/nodes.conf --save "" --daemonize yes
#   redis-cli -p 7379 cluster addslotsrange 0 16383
#   python3 tools/redis_cache_bench.py 7379 allkeys-lfu
#
# It FLUSHALLs the server and changes its maxmemory settings.
import bisect, random, socket, sys

port, policy = int(sys.argv[1]), sys.argv[2]
N, OPS = 100_000, 200_000
rnd = random.Random(7)
cum, acc = [], 0.0
for r in range(1, N + 1):
    acc += 1.0 / r
    cum.append(acc)
ttl = [rnd.random() < 0.5 for _ in range(N)]
value = b"x" * 1000

s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")

def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    return read()

def read():
    line = f.readline()
    t = line[:1]
    if t == b"$":
        n = int(line[1:])
        if n < 0:
            return None
        d = f.read(n + 2)
        return d[:-2]
    if t == b"-":
        return Exception(line[1:].strip().decode())
    if t == b":":
        return int(line[1:])
    if t == b"*":
        return [read() for _ in range(int(line[1:]))]
    return line[1:].strip()

cmd("FLUSHALL")
cmd("CONFIG", "RESETSTAT")
cmd("CONFIG", "SET", "maxmemory", "20mb")
cmd("CONFIG", "SET", "maxmemory-policy", policy)
failed, oom_text = 0, None

def setk(k):
    global failed, oom_text
    key = b"key:%d" % k
    r = cmd("SET", key, value, "EX", 3600) if ttl[k] else cmd("SET", key, value)
    if isinstance(r, Exception):
        failed += 1
        oom_text = str(r)

for _ in range(OPS):
    k = bisect.bisect_left(cum, rnd.random() * acc)
    if rnd.random() < 0.9:
        if cmd("GET", b"key:%d" % k) is None:
            setk(k)
    else:
        setk(k)
info = cmd("INFO", "stats").decode()
st = dict(l.split(":", 1) for l in info.split("\r\n") if ":" in l)
h, m = int(st["keyspace_hits"]), int(st["keyspace_misses"])
print("%-16s hit %.3f evicted %6s failed writes %d %s" % (policy, h / (h + m), st["evicted_keys"], failed, oom_text or ""))
