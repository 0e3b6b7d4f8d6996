"""Make the space lines are compared in when searching by meaning (review/meaning.py):
multilingual-e5 gives every sentence a large shared component, and its strongest direction of
difference among call-centre lines is largely the language they are in. The space is the mean
of the call-centre lines in tests/data/sentiment (cc-*.tsv, both languages) taken away, and the
next 192 directions along which those lines differ most (principal components 2–193): a question
then finds lines by what they say rather than by how all such lines sound, and each line is
half as many numbers to store and to compare. On tests/data/meaning, recall@10 went from 0.53
(the model's own vectors) to 0.60, and across languages from 0.33 to 0.53
(docs/benchmarks.md#search-by-meaning).

Writes src/callscope/review/meaning_space.npz (`centre`, `basis`) and .json (the lines' sets
with their SHA-256). Nothing is computed at run time.

Run:  .venv/bin/python -m scripts.meaning_space
      .venv/bin/python -m scripts.meaning_space --check   (the package's files are current)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from callscope.measures import embeddings
from callscope.review import meaning

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "tests" / "data" / "sentiment"


def sets() -> dict[str, str]:
    """The call-centre sets read, by name, with their SHA-256."""
    return {
        p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(SETS.glob("cc-*.tsv"))
    }


def space() -> dict[str, np.ndarray]:
    texts = [
        row["text"]
        for name in sets()
        for row in csv.DictReader((SETS / f"{name}.tsv").open(encoding="utf-8"), delimiter="\t")
    ]
    vectors = embeddings.embed(texts)
    centre = vectors.mean(axis=0)
    _u, _s, directions = np.linalg.svd(vectors - centre, full_matrices=False)
    basis = directions[1 : 1 + meaning.DIMENSIONS]  # (the first, largely the language, left out)
    return {"centre": centre.astype(np.float32), "basis": basis.astype(np.float32)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the package's files")
    args = parser.parse_args()
    about_path = meaning.SPACE.with_suffix(".json")
    if args.check:
        about = json.loads(about_path.read_text(encoding="utf-8"))
        if about["sets"] != sets():
            print("the lines changed: run python -m scripts.meaning_space", file=sys.stderr)
            return 1
        return 0
    np.savez(meaning.SPACE.with_suffix(".npz"), **space())
    about_path.write_text(json.dumps({"sets": sets()}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {meaning.SPACE.with_suffix('.npz')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
