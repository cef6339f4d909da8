import json, re, sys
ppl = json.load(open('results/policies-2025/table.json'))['rows']
pk = json.load(open('results/policies-2025-passkey/table.json'))['rows']
def split(name):
    m = re.match(r'^(.*)-(\d+)$', name)
    return (m.group(1), int(m.group(2))) if m else (name, None)
P = {}
for r in ppl:
    base, b = split(r['backend'])
    if b: P[(base, round(100*b/1024, 1))] = r
K = {}
for r in pk:
    base, b = split(r['backend'])
    if b: K[(base, round(100*b/512, 1))] = r
refpk = [r for r in pk if r['backend'] in ('f32','f16')]
out = []
for pct in (12.5, 25.0, 50.0):
    rows = sorted([(k[0], v) for k, v in P.items() if k[1] == pct], key=lambda x: x[1]['klMean'])
    out.append(f"\n### {pct:g}% of the context ({int(pct*1024/100)} of 1024 tokens for PPL/KL" + (f"; {int(pct*512/100)} of 512 for the pass key)" if pct != 12.5 else "; pass key not run at this budget)") + "\n")
    out.append("| rank (KL) | policy | KL mean | KL p99 | ΔPPL [95% CI] | same top-1 | peak KV KiB | pass key [95% CI] |")
    out.append("| ---: | --- | ---: | ---: | --- | ---: | ---: | --- |")
    for i, (base, r) in enumerate(rows, 1):
        k = K.get((base, pct))
        acc = f"{100*k['accuracy']:.0f}% ({k['correct']}/{k['total']}) [{100*k['accuracyLo']:.0f}–{100*k['accuracyHi']:.0f}%]" if k else "–"
        out.append(f"| {i} | {base} | {r['klMean']:.2e} | {r['klP99']:.2e} | {r['dPpl']:+.3f} [{r['dPplLo']:+.3f}, {r['dPplHi']:+.3f}] | {100*r['sameTop1']:.1f}% | {r['peakKvBytes']/1024:.1f} | {acc} |")
base_lines = []
for r in refpk:
    base_lines.append(f"{r['backend']}: {100*r['accuracy']:.0f}% ({r['correct']}/{r['total']}) [{100*r['accuracyLo']:.0f}–{100*r['accuracyHi']:.0f}%]")
print("\n".join(out))
print("\nFull cache, pass key: " + "; ".join(base_lines))

# The pass key with 30 prompts per cache for the policies of kvpress's RULER-4K ordering
# (experiments/policies-2025-ruler-order.yaml), when that run exists.
import os
ro = 'results/policies-2025-ruler-order/table.json'
if os.path.exists(ro):
    R = {}
    for r in json.load(open(ro))['rows']:
        base, b = split(r['backend'])
        R[(base, b)] = r
    print("\n### Pass key, 30 prompts per cache (policies-2025-ruler-order)\n")
    print("| policy | 25% (128 of 512) [95% CI] | 50% (256 of 512) [95% CI] |")
    print("| --- | --- | --- |")
    fmt = lambda k: f"{100*k['accuracy']:.0f}% ({k['correct']}/{k['total']}) [{100*k['accuracyLo']:.0f}–{100*k['accuracyHi']:.0f}%]" if k else "–"
    for base in sorted({k[0] for k in R if k[1]}, key=lambda x: -(R.get((x, 256)) or {'accuracy': 0})['accuracy']):
        print(f"| {base} | {fmt(R.get((base, 128)))} | {fmt(R.get((base, 256)))} |")
    print("\nFull cache: " + "; ".join(f"{n}: {fmt(R[(n, None)])}" for n in ('f32', 'f16') if (n, None) in R))
