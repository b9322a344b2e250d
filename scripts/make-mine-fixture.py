#!/usr/bin/env python3
"""Makes gr-mine's fixtures: k-sample files built from the published
GuardReasoner-1B predictions, and the pairs that GuardReasoner's own mining
logic produces from them.

The mining here is a separate implementation of what
train/hard_sample_mining.py and train/merge_hard_sample.py compute, written
from reading those scripts (not from gr-mine's C code). As there, each source
is k files of row-aligned records ({prompt, label, predict}) read with pandas,
answers are `re.search(r"Request:\\s*(\\w+)", text).group(1)` and the like
over the whole text, a sample counts only when all three answers are found,
ties between equally long samples go to the lower sample number, the weights
use the script's numpy formula per source, and the ensemble is
`pd.concat(...).drop_duplicates(subset="input")`. Where the scripts are
evidently broken we do what gr-mine(1) documents instead: every source is read
from its own files, and a source whose raw weights are all equal gets weight
1.0 instead of NaN.

The sampled outputs exercise what a real guard writes and what the reference
reads differently from gr-eval: answer blocks followed by long further sections
(multi-task outputs), words other than the labels in an answer slot, samples
with only some of the three answer lines, equally long samples, and sources
whose records have ids numbered differently or no ids at all.

Writes testdata/mine/{self,other,other2}.jsonl.zst (gr-mine's inputs),
testdata/mine/expected-{source,union}.jsonl.zst (the pairs for
`--self self --other other --other other2`), and
testdata/mine/answers-cases.jsonl (texts and the words Python's re finds in
them, for the unit test of gr-mine's reader).
Usage: scripts/make-mine-fixture.py [SHARED_DIR]   (numpy, pandas, the zstd CLI)
"""
import io, json, os, random, re, subprocess, sys, tempfile
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared")
OUT = os.path.join(ROOT, "testdata", "mine")
PRED = os.path.join(SHARED, "data", "guardreasoner", "predictions", "1B")
TITLES = ("Request", "Completion", "Response")
OTHER = {"harmful": "unharmful", "unharmful": "harmful", "refusal": "compliance", "compliance": "refusal"}
ODD_WORDS = ["ambiguous", "unclear", "None", "Harmful", "UNHARMFUL", "harmful_content", "**harmful**", "-"]


# ---- the reference's reading and mining -------------------------------------------------

def first_word(key, text):
    """re.search(key + r":\\s*(\\w+)", text).group(1); None where that raises."""
    try:
        return re.search(key + r":\s*(\w+)", text).group(1)
    except (AttributeError, TypeError):
        return None


def mine_source(files):
    """One source's k row-aligned files (DataFrames) -> pairs with raw weights and
    the index of the chosen sample (for the fields that pass through)."""
    pairs = []
    k = len(files)
    for i in range(len(files[0]["predict"])):
        gold = {t: first_word(t, files[0]["label"][i]) for t in TITLES}
        if None in gold.values():
            continue  # the script's `except: continue` on the label
        results = {t: [] for t in TITLES}
        rows = []  # (sample number, row) of the samples whose three answers all parse
        for j in range(k):
            words = {t: first_word(t, files[j]["predict"][i]) for t in TITLES}
            if None in words.values():
                continue
            for t in TITLES:
                results[t].append(words[t])
            rows.append((j, files[j].iloc[i]))
        if not rows:
            continue  # find_mode of an empty list fails: the example is skipped
        ai = first_word("AI assistant", files[0]["prompt"][i]) or ""
        for t in ("Request", "Response", "Completion"):
            if t != "Request" and (gold[t] == "None" or ai == "None"):
                continue
            right = [n for n, w in enumerate(results[t]) if w == gold[t]]
            wrong = [n for n, w in enumerate(results[t]) if w != gold[t]]
            if not right or not wrong:
                continue

            def longest(idx):  # the first of the longest, in sample order
                best, best_len = 0, -1
                for n in idx:
                    if len(rows[n][1]["predict"]) > best_len:
                        best, best_len = n, len(rows[n][1]["predict"])
                return best

            c, r = longest(right), longest(wrong)
            prompt = rows[c][1]["prompt"]
            pairs.append({"instruction": prompt[:489], "input": prompt[491:], "chosen": rows[c][1]["predict"],
                          "rejected": rows[r][1]["predict"], "sample_weight": len(wrong) - len(right),
                          "task": t.lower(), "k_correct": len(right), "k_incorrect": len(wrong),
                          "_row": i, "_chosen_k": rows[c][0]})
            break
    return pairs


def normalise(pairs, max_norm=0.2):
    """The script's min-max formula over one output file; NaN (all raw weights
    equal) becomes 1.0 as gr-mine(1) documents."""
    if not pairs:
        return
    w = np.array([p["sample_weight"] for p in pairs])
    with np.errstate(invalid="ignore", divide="ignore"):
        w = 1 + (w - min(w)) * max_norm * 2 / (max(w) - min(w)) - max_norm
    for p, x in zip(pairs, w):
        p["sample_weight"] = 1.0 if np.isnan(x) else float(x)


def merge(*sources):
    """merge_hard_sample.py: concatenate, keep the first row per input."""
    df = pd.concat([pd.DataFrame(s) for s in sources if s])
    return df.drop_duplicates(subset="input").to_dict(orient="records")


# ---- the sampled outputs -----------------------------------------------------------------

def load(name, n):
    rows, seen = [], set()
    with open(os.path.join(PRED, name, "generated_predictions.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["prompt"] in seen:
                continue  # one example per prompt, as the id-less source needs
            seen.add(r["prompt"])
            rows.append(r)
            if len(rows) == n:
                break
    return rows


def gold_of(r):
    """The training label of a benchmark row: the 1B model's answers, corrected
    by the benchmark label."""
    gold = {t: first_word(t, r["predict"]) for t in TITLES}
    for t in TITLES:
        if gold[t] not in OTHER:
            gold[t] = None
    no_response = r["prompt"].endswith("AI assistant:\nNone\n\n")
    if r["label"] in ("refusal", "compliance"):
        gold["Completion"] = r["label"]
    elif r["label"] in ("harmful", "unharmful"):
        gold["Request" if no_response else "Response"] = r["label"]
    if no_response:
        gold["Completion"] = gold["Response"] = None
    return gold


def answer_block(ans, drop=None):
    return "Answers: \n" + "".join("%s: %s\n" % (t, ans[t]) for t in TITLES if t != drop)


def variant(rng, r, gold, pool):
    """One sampled output of row r."""
    head, sep, _ = r["predict"].rpartition("Answers:")
    if not sep:
        head = r["predict"]
    steps = head.split("\n\n")
    body = "\n\n".join(steps[:rng.randint(max(1, len(steps) // 2), len(steps))]) + "\n\n"
    body += "(draft %s)\n\n" % rng.choice("abcdefgh")  # twins below change only this letter
    u = rng.random()
    if u < 0.06:
        return body  # cut off before the answer block
    ans = {t: (gold[t] if gold[t] and rng.random() < 0.6 else (OTHER[gold[t]] if gold[t] else "None")) for t in TITLES}
    if u < 0.14:
        ans[rng.choice(TITLES)] = rng.choice(ODD_WORDS)
    drop = rng.choice(TITLES) if 0.14 <= u < 0.20 else None
    text = body + answer_block(ans, drop)
    if 0.20 <= u < 0.32:
        # a multi-section output: a long further section after the answers,
        # sometimes with a second answer block of its own
        other = rng.choice(pool)["predict"].rpartition("Answers:")[0] or rng.choice(pool)["predict"]
        text += "\n# Task 2\n\n" + other[:rng.randint(400, 1200)] + "\n\n"
        if rng.random() < 0.5:
            text += answer_block({t: OTHER.get(ans[t], "harmful") for t in TITLES})
    return text


def samples(rng, rows, k, pool):
    """k row-aligned lists of outputs; some samples are twins of an earlier one
    (the same length, one letter different), so ties between longest outputs occur."""
    out = [[None] * len(rows) for _ in range(k)]
    for i, r in enumerate(rows):
        gold = gold_of(r)
        for j in range(k):
            if j > 0 and rng.random() < 0.2:
                twin = out[rng.randrange(j)][i]
                m = re.search(r"\(draft (\w)\)", twin)
                if m:
                    letter = rng.choice([c for c in "abcdefgh" if c != m.group(1)])
                    out[j][i] = twin[:m.start(1)] + letter + twin[m.end(1):]
                    continue
            out[j][i] = variant(rng, r, gold, pool)
    return out


def label_text(gold):
    return answer_block({t: gold[t] or "None" for t in TITLES})


def frames(rows, outs, extra):
    """The script's view of a source: k DataFrames as pd.read_json reads them."""
    dfs = []
    for j, col in enumerate(outs):
        recs = [dict({"prompt": r["prompt"], "label": label_text(gold_of(r)), "predict": col[i]}, **extra(i, j))
                for i, r in enumerate(rows)]
        dfs.append(pd.read_json(io.StringIO("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in recs)), lines=True))
    return dfs


def write_zst(path, rows):
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", path], input=data, check=True)


def answers_cases(rng):
    """Texts with the words Python's re finds after each key, for the unit test."""
    alphabet = (list("Request:Completion:Response:AI assistant: harmful_x-.*\n\t") +
                ["\u00a0", "\u2028", "\u3000", "\x1c", "\x85", "\u200b", "\u00e9", "e\u0301", "\u00b2", "\u2167",
                 "\u0663", "\uff12", "\u4e00", "\u00aa", "\u02b0", "\U0001d400", "\U0001f600", "\u0130", "\u017f",
                 "\u212a", "\u00df", "\u0600", "\ufeff", "\u2160", "\u00bd", "\u0e31", "\u0903"])
    keys = ["Request", "Completion", "Response", "AI assistant"]
    texts = [
        "Answers: \nRequest: harmful\nCompletion: refusal\nResponse: unharmful\n",
        "Request:\n\n  harmful.", "Request: Harmful", "request: harmful", "Request:harmfulness", "Request: **harmful**",
        "Request: -\nRequest: unharmful", "Request: \u00a0harmful", "Request: \uff12x", "Request: caf\u00e9!",
        "Request: cafe\u0301", "Request: None", "Request:", "Request: \nCompletion: refusal", "Request:\u200bharmful",
        "AI assistant:\nNone\n\n", "AI assistant:\n\"None\"", "AI assistant:\nNone of that\n", "AI assistant: _x",
    ]
    for _ in range(400):
        n = rng.randint(0, 40)
        s = "".join(rng.choice(alphabet) for _ in range(n))
        key = rng.choice(keys) + ":"
        pos = rng.randint(0, len(s))
        texts.append(s[:pos] + key + s[pos:])
    return [{"text": t, "words": {k: first_word(k, t) for k in keys}} for t in texts]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(2026)
    hb, aegis, sst = load("HarmBenchResponse", 90), load("AegisSafetyTest", 70), load("SimpleSafetyTests", 30)
    xs = load("XSTestResponseRefusal", 30)
    pool = hb + aegis + sst + xs
    # self: k = 4, ids 0.., records shuffled (grouping and ties must not follow file order)
    rows_s = hb + aegis
    outs_s = samples(rng, rows_s, 4, pool)
    extra_s = lambda i, j: {"dataset": "HarmBenchResponse" if i < len(hb) else "AegisSafetyTest", "sample_tag": "s%d.%d" % (i, j)}
    # other: k = 6, overlapping self from row 30 on, its ids numbered differently
    # (the same numbers name other prompts), plus rows of its own
    rows_o = rows_s[30:] + sst + xs
    outs_o = samples(rng, rows_o, 6, pool)
    ids_o = [(7 * i + 3) % len(rows_o) for i in range(len(rows_o))]
    assert len(set(ids_o)) == len(rows_o)
    extra_o = lambda i, j: {"sample_tag": "o%d.%d" % (i, j)}
    # other2: k = 3, GuardReasoner's own form: no id, no k, the k files one after another
    rows_2 = rows_s[100:] + xs[:10]
    outs_2 = samples(rng, rows_2, 3, pool)

    recs_s = [dict({"id": i, "k": j, "prompt": r["prompt"], "label": label_text(gold_of(r)), "predict": outs_s[j][i]},
                   **extra_s(i, j)) for i, r in enumerate(rows_s) for j in range(4)]
    rng.shuffle(recs_s)
    recs_o = [dict({"id": ids_o[i], "k": j, "prompt": r["prompt"], "label": label_text(gold_of(r)), "predict": outs_o[j][i]},
                   **extra_o(i, j)) for i, r in enumerate(rows_o) for j in range(6)]
    rng.shuffle(recs_o)
    recs_2 = [{"prompt": r["prompt"], "label": label_text(gold_of(r)), "predict": outs_2[j][i]}
              for j in range(3) for i, r in enumerate(rows_2)]
    write_zst(os.path.join(OUT, "self.jsonl.zst"), recs_s)
    write_zst(os.path.join(OUT, "other.jsonl.zst"), recs_o)
    write_zst(os.path.join(OUT, "other2.jsonl.zst"), recs_2)

    srcs = [("self.jsonl.zst", frames(rows_s, outs_s, extra_s), lambda i: i, extra_s),
            ("other.jsonl.zst", frames(rows_o, outs_o, extra_o), lambda i: ids_o[i], extra_o),
            ("other2.jsonl.zst", frames(rows_2, outs_2, lambda i, j: {}), lambda i: i + 1, lambda i, j: {})]
    for mode in ("source", "union"):
        mined = []
        for name, files, id_of, extra in srcs:
            ps = mine_source(files)
            for p in ps:
                p.update(extra(p["_row"], p["_chosen_k"]))  # our extension: the chosen record's other fields
                p.update({"id": id_of(p.pop("_row")), "source": name})
                del p["_chosen_k"]
            mined.append(ps)
        if mode == "source":
            for ps in mined:
                normalise(ps)
        else:
            normalise([p for ps in mined for p in ps])
        merged = merge(*mined)
        # pandas fills the fields a row lacks with NaN: drop those again
        merged = [{k: v for k, v in p.items() if not (isinstance(v, float) and np.isnan(v))} for p in merged]
        write_zst(os.path.join(OUT, "expected-%s.jsonl.zst" % mode), merged)
        print(mode, [len(ps) for ps in mined], len(merged), file=sys.stderr)
    with open(os.path.join(OUT, "answers-cases.jsonl"), "w", encoding="utf-8") as f:
        for c in answers_cases(random.Random(7)):
            f.write(json.dumps(c, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
