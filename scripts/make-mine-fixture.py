#!/usr/bin/env python3
"""Makes gr-mine's fixtures: synthetic k-sample files built from the published
GuardReasoner-1B predictions, and the pairs that the reference hard-sample
mining logic (GuardReasoner's train/hard_sample_mining.py + merge_hard_sample.py,
re-implemented here from their description, with the paper's per-model reading of
the ensemble) produces from them.

Writes testdata/mine/{self,other}.jsonl.zst and
testdata/mine/expected-{source,union}.jsonl.zst.
Usage: scripts/make-mine-fixture.py [SHARED_DIR]   (standard library + the zstd CLI)
"""
import json, os, random, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared")
OUT = os.path.join(ROOT, "testdata", "mine")
PRED = os.path.join(SHARED, "data", "guardreasoner", "predictions", "1B")
PAT = {"request": r"Request:\s*(harmful|unharmful)", "completion": r"Completion:\s*(compliance|refusal)",
       "response": r"Response:\s*(harmful|unharmful)"}
OTHER = {"harmful": "unharmful", "unharmful": "harmful", "refusal": "compliance", "compliance": "refusal"}


def parse(text, task):
    m = re.search(PAT[task], text[-300:], re.IGNORECASE)
    return m.group(1).lower() if m else None


def load(name, n):
    with open(os.path.join(PRED, name, "generated_predictions.jsonl")) as f:
        return [json.loads(l) for l, _ in zip(f, range(n))]


def variant(rng, predict, gold):
    """One sampled output: the reasoning cut at a random step, answers flipped at random, sometimes no answer."""
    head, sep, _ = predict.rpartition("Answers:")
    if not sep:
        head = predict
    steps = head.split("\n\n")
    keep = rng.randint(max(1, len(steps) // 2), len(steps))
    body = "\n\n".join(steps[:keep]) + "\n\n"
    if rng.random() < 0.1:
        return body  # cut off before the answer block
    ans = {t: (gold[t] if gold[t] and rng.random() < 0.6 else (OTHER[gold[t]] if gold[t] else "None")) for t in gold}
    return body + "Answers: \nRequest: %s\nCompletion: %s\nResponse: %s\n" % (ans["request"], ans["completion"], ans["response"])


def build(rng, rows, k_choices):
    out = []
    for i, r in rows:
        p = r["predict"]
        gold = {t: parse(p, t) for t in PAT}
        if r["label"] in ("harmful", "unharmful"):
            gold["response" if "None\n\n" not in r["prompt"][-8:] else "request"] = r["label"]
        if r["prompt"].endswith("AI assistant:\nNone\n\n"):
            gold["completion"] = gold["response"] = None
        label = "Answers: \nRequest: %s\nCompletion: %s\nResponse: %s\n" % tuple(gold[t] or "None" for t in ("request", "completion", "response"))
        k = rng.choice(k_choices)
        for j in range(k):
            out.append({"id": i, "prompt": r["prompt"], "label": label, "predict": variant(rng, p, gold), "k": j})
    rng.shuffle(out)  # grouping must not depend on order
    return out


def mine(records):
    """The reference logic for one model's samples: a list of pairs with raw weights."""
    groups, order = {}, []
    for r in records:
        if r["id"] not in groups:
            groups[r["id"]] = []
            order.append(r["id"])
        groups[r["id"]].append(r)
    pairs = []
    for i in order:
        g = groups[i]
        prompt, label = g[0]["prompt"], g[0]["label"]
        has_response = not prompt.endswith("AI assistant:\nNone\n\n")
        outs = [r["predict"] for r in g]
        for task in ("request", "response", "completion"):
            gold = parse(label, task)
            if gold is None or (task != "request" and not has_response):
                continue
            right = [o for o in outs if parse(o, task) == gold]
            wrong = [o for o in outs if parse(o, task) not in (None, gold)]
            if right and wrong:
                pairs.append({"instruction": prompt[:489], "input": prompt[491:], "chosen": max(right, key=len),
                              "rejected": max(wrong, key=len), "raw": len(wrong) - len(right), "id": i, "task": task,
                              "k_correct": len(right), "k_incorrect": len(wrong)})
                break
    return pairs


def normalise(pairs):
    lo, hi = min(p["raw"] for p in pairs), max(p["raw"] for p in pairs)
    for p in pairs:
        p["sample_weight"] = 1.0 if hi == lo else 0.8 + 0.4 * (p["raw"] - lo) / (hi - lo)


def write_zst(path, rows):
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", path], input=data, check=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(2025)
    rows = list(enumerate(load("HarmBenchResponse", 90))) + [(1000 + i, r) for i, r in enumerate(load("AegisSafetyTest", 70))]
    self_rec = build(rng, rows, [4])
    other_rec = build(rng, rows[30:] + [(2000 + i, r) for i, r in enumerate(load("SimpleSafetyTests", 30))], [2, 3, 4, 6, 8])
    write_zst(os.path.join(OUT, "self.jsonl.zst"), self_rec)
    write_zst(os.path.join(OUT, "other.jsonl.zst"), other_rec)
    ps, po = mine(self_rec), mine(other_rec)
    for mode in ("source", "union"):
        if mode == "source":
            normalise(ps); normalise(po)
        else:
            normalise(ps + po)
        seen, merged = set(), []
        for p in ps + po:  # merge_hard_sample.py: the first row per example
            if p["id"] in seen:
                continue
            seen.add(p["id"])
            merged.append({k: p[k] for k in ("instruction", "input", "chosen", "rejected", "sample_weight", "id",
                                             "task", "k_correct", "k_incorrect")})
        write_zst(os.path.join(OUT, "expected-%s.jsonl.zst" % mode), merged)
        print(mode, len(ps), len(po), len(merged), file=sys.stderr)


if __name__ == "__main__":
    main()
