"""textcluster's fit and assign as Spark applications, for `spark-submit`.

    spark-submit jobs/spark/textcluster_spark.py fit --spec jobs/lake.toml \
        --input s3a://lake/corpus --model /mnt/models [--set cluster.k=30 ...]
    spark-submit jobs/spark/textcluster_spark.py assign --input s3a://lake/corpus \
        --model /mnt/models --output s3a://lake/labels [--partition-col dt]

`fit` fits on every document of `--input` (which becomes the spec's `input.path`) and publishes
the model; `assign` labels `--input` against the registry's current model and writes the labels
with Spark's writer, partitioned by `--partition-col`, overwriting only the partitions it
labels. Each prints one JSON line: the model_id, and for assign the rows written. The
`textcluster` wheel must be installed on the driver and the executors.
"""

import argparse
import json

from pyspark.sql import SparkSession

import textcluster
import textcluster.spark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit")
    fit.add_argument("--spec", required=True)
    fit.add_argument("--input", required=True)
    fit.add_argument("--model", required=True)
    fit.add_argument("--set", action="append", default=[], dest="overrides")
    assign = sub.add_parser("assign")
    assign.add_argument("--input", required=True)
    assign.add_argument("--model", required=True)
    assign.add_argument("--output", required=True)
    assign.add_argument("--partition-col", default="dt")
    args = ap.parse_args()

    spark = SparkSession.builder.appName(f"textcluster-{args.command}").getOrCreate()
    df = spark.read.parquet(args.input)
    if args.command == "fit":
        overrides = [f"input.path={args.input}", *args.overrides]
        model_id = textcluster.spark.fit(df, args.spec, args.model, overrides=overrides)
        print(json.dumps({"command": "fit", "model_id": model_id}))
    else:
        model = textcluster.Model.load(args.model)
        labels = textcluster.spark.assign(df, model, keep=[args.partition_col])
        (
            labels.write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(args.partition_col)
            .parquet(args.output)
        )
        rows = spark.read.parquet(args.output).count()
        print(json.dumps({"command": "assign", "model_id": model.model_id, "rows": rows}))
    spark.stop()


if __name__ == "__main__":
    main()
