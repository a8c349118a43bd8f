import sys, glob, collections
files = sorted(glob.glob(sys.argv[1] + '.*'))
ev = collections.defaultdict(dict)
for f in files:
    tag = None
    for line in open(f):
        parts = line.split()
        if len(parts) != 3: continue
        i, st, t = parts
        t = int(t)
        if st == 'x.committed':
            st = 'committed@' + f[-5:]
        ev[i].setdefault(st, t)
# identify node0 file: the one with a.signed
n0 = [f for f in files if 'a.signed' in open(f).read(200000)]
n0 = n0[0][-5:] if n0 else None
order = ['a.signed', 'committed@'+n0, 'a.durable', 'a.broadcast', 'b.recv', 'b.verified']
others = [f[-5:] for f in files if f[-5:] != n0]
order += ['committed@'+o for o in others] + ['b.durable', 'b.apply', 'b.stored']
full = [e for e in ev.values() if all(k in e for k in order if k not in ('b.durable',))]
print(len(full), 'events with all stages; order', order)
def pct(a, q):
    a = sorted(a); return a[min(len(a)-1, int(q*len(a)))]
steps = [(order[i], order[i+1]) for i in range(len(order)-1)]
# note: b.durable may come after b.apply; compute apply from committed
steps = [('a.signed','committed@'+n0),('committed@'+n0,'a.durable'),('a.durable','a.broadcast'),('a.broadcast','b.recv'),('b.recv','b.verified'),('b.verified','committed@'+others[0]),('committed@'+others[0],'b.apply'),('b.apply','b.stored'),('a.signed','b.stored')]
for a,b in steps:
    d = [(e[b]-e[a])/1e6 for e in full if a in e and b in e]
    print(f"{a:>18} -> {b:<18} p50 {pct(d,.5):7.2f} p90 {pct(d,.9):7.2f} p99 {pct(d,.99):7.2f} max {max(d):7.2f} ms")
# worst 1%: average share per step
tot = sorted(full, key=lambda e: e['b.stored']-e['a.signed'])
worst = tot[int(len(tot)*0.99):]
print('worst 1%:', len(worst))
for a,b in steps[:-1]:
    d = [(e[b]-e[a])/1e6 for e in worst]
    print(f"{a:>18} -> {b:<18} mean {sum(d)/len(d):7.2f} ms")
