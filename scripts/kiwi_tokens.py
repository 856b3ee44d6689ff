"""Adds a `tokens` column of Kiwi morphemes to a hive-partitioned Parquet corpus: the recipe for
`vectorize.tokenizer = "column"` with a Korean morphological analyzer (kiwipiepy).

usage: python scripts/kiwi_tokens.py INPUT OUTPUT [--text-column text] [--tags NNG,NNP,SL,SH,XR]

OUTPUT gets the same partitions as INPUT, each file with every column of INPUT plus `tokens`
(list<string>): the forms of the morphemes whose part-of-speech tag is in --tags (default:
common and proper nouns, foreign words, Chinese characters and roots).
"""
import argparse
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from kiwipiepy import Kiwi


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--tags", default="NNG,NNP,SL,SH,XR")
    args = parser.parse_args()
    tags = set(args.tags.split(","))
    kiwi = Kiwi(num_workers=os.cpu_count() or 1)
    n_docs = 0
    for root, _, files in sorted(os.walk(args.input)):
        for name in sorted(f for f in files if f.endswith(".parquet")):
            path = os.path.join(root, name)
            table = pq.read_table(path)
            texts = [t or "" for t in table.column(args.text_column).to_pylist()]
            tokens = [
                [tok.form for tok in analysed if tok.tag in tags]
                for analysed in kiwi.tokenize(texts)
            ]
            table = table.append_column("tokens", pa.array(tokens, pa.list_(pa.string())))
            out = os.path.join(args.output, os.path.relpath(path, args.input))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            pq.write_table(table, out)
            n_docs += len(texts)
    print(f"{n_docs} documents tokenised into {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
