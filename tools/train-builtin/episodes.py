"""Synthetic long-range episodes mixed into the training stream of models/sotu-llama-long.

Each generator returns text (a str); the trainer encodes it whole, as kvlab's task generators do,
so token boundaries match evaluation. The templates of the passkey, kv-recall and variable
tracking episodes are the ones `kvlab task` uses (src/tasks/templates.ts); keep them in step.
The needle-style "fact" episodes deliberately use other attributes and values than kvlab's
built-in needle set (src/tasks/needles.ts), so that the needle task measures retrieval the model
learned in general, not facts it memorised.
"""

PASSKEY_INTRO = "A pass key is hidden in the text below. Remember it: you will be asked for it at the end.\n\n"
PASSKEY_FILLER = "The fields are green. The sky is clear. The river runs to the sea. Here we go again.\n"
PASSKEY_NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key.\n"
PASSKEY_QUESTION = "\nWhat is the pass key? The pass key is"

KV_INTRO = "Here is a list of names and numbers. Remember them.\n\n"
KV_LINE = "The number of {key} is {value}.\n"
KV_QUESTION = "\nWhat is the number of {key}? The number of {key} is"

VT_INTRO = "Follow the variables. Remember which of them hold which value.\n\n"
VT_ASSIGN_VALUE = "VAR {name} = {value}.\n"
VT_ASSIGN_VAR = "VAR {name} = {prev}.\n"
VT_QUESTION = "\nWhich variables hold the value {value}? They are:"

FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard "
         "Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark "
         "Helen Donald Sandra Steven Ashley Paul Kimberly Andrew Emily Joshua Donna Kenneth Michelle Kevin "
         "Carol Brian Amanda George Melissa Edward Deborah Ronald Stephanie Timothy Rebecca Jason Laura "
         "Jeffrey Sharon Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Shirley Eric Angela Jonathan Anna "
         "Stephen Ruth Larry Brenda Justin Pamela Scott Nicole Frank Katherine Samuel Virginia Gregory "
         "Catherine Alexander Christine Patrick Samantha Raymond Debra Jack Janet Dennis Rachel Jerry "
         "Carolyn Tyler Emma Aaron Maria Henry Heather Douglas Diane Peter Julie Adam Joyce Walter Evelyn").split()
LAST = ("Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson "
        "Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Hill Green Adams "
        "Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart "
        "Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kelly Howard Ward Cox Richardson "
        "Wood Watson Brooks Bennett Gray Hughes Price Sanders Myers Long Ross Foster").split()
STATES = ("Alabama Alaska Arizona Arkansas California Colorado Connecticut Delaware Florida Georgia Hawaii "
          "Idaho Illinois Indiana Iowa Kansas Kentucky Louisiana Maine Maryland Massachusetts Michigan "
          "Minnesota Mississippi Missouri Montana Nebraska Nevada Ohio Oklahoma Oregon Pennsylvania Tennessee "
          "Texas Utah Vermont Virginia Washington Wisconsin Wyoming").split()
COLORS = "red blue green yellow purple orange white black silver golden brown gray".split()
THINGS = ("apple river lantern harbor violin meadow compass anchor falcon garden mountain candle ladder "
          "window bridge arrow barrel castle island saddle").split()
# Attribute -> value pool for the training facts (kvlab's needle set uses none of these attributes).
FACT_ATTRS = [
    ("favorite color", COLORS),
    ("home state", STATES),
    ("lucky word", THINGS),
    ("best friend", FIRST),
    ("family name", LAST),
    ("code word", THINGS),
]


def digits(rng, lo=5, hi=7):
    n = int(rng.integers(lo, hi + 1))
    first = str(int(rng.integers(1, 10)))
    return first + "".join(str(int(d)) for d in rng.integers(0, 10, n - 1))


def person(rng):
    return f"{FIRST[int(rng.integers(len(FIRST)))]} {LAST[int(rng.integers(len(LAST)))]}"


def var_name(rng):
    return "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 5))


def passkey(rng, filler_chunks, depth):
    """filler_chunks: list of str (the repeated filler sentence, or natural-text sentences)."""
    key = digits(rng)
    cut = int(round(depth * len(filler_chunks)))
    body = "".join(filler_chunks[:cut]) + PASSKEY_NEEDLE.format(key=key) + "".join(filler_chunks[cut:])
    return PASSKEY_INTRO + body + PASSKEY_QUESTION + " " + key + ".\n"


def kv_recall(rng, n_pairs):
    keys, seen = [], set()
    while len(keys) < n_pairs:
        k = person(rng)
        if k not in seen:
            seen.add(k)
            keys.append(k)
    values = [digits(rng, 3, 6) for _ in keys]
    q = int(rng.integers(n_pairs))
    lines = "".join(KV_LINE.format(key=k, value=v) for k, v in zip(keys, values))
    return KV_INTRO + lines + KV_QUESTION.format(key=keys[q]) + " " + values[q] + ".\n"


def variable_tracking(rng, noise_chunks, hops=4):
    value = digits(rng, 5, 5)
    names = [var_name(rng) for _ in range(hops)]
    stmts = [VT_ASSIGN_VALUE.format(name=names[0], value=value)]
    stmts += [VT_ASSIGN_VAR.format(name=names[i], prev=names[i - 1]) for i in range(1, hops)]
    # Statements spread in order through the noise.
    slots = sorted(int(s) for s in rng.integers(0, len(noise_chunks) + 1, hops))
    out, j = [], 0
    for i, chunk in enumerate(noise_chunks + [""]):
        while j < hops and slots[j] == i:
            out.append(stmts[j])
            j += 1
        out.append(chunk)
    return VT_INTRO + "".join(out) + VT_QUESTION.format(value=value) + " " + " ".join(names) + ".\n"


def fact(rng, text_chunks, depth):
    attr, pool = FACT_ATTRS[int(rng.integers(len(FACT_ATTRS)))]
    who = person(rng)
    val = pool[int(rng.integers(len(pool)))]
    stmt = f"The {attr} of {who} is {val}. "
    cut = int(round(depth * len(text_chunks)))
    body = "".join(text_chunks[:cut]) + stmt + "".join(text_chunks[cut:])
    return body + f"\nWhat is the {attr} of {who}? The {attr} of {who} is {val}.\n"
