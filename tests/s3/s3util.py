"""Helpers for the S3 tests, against the endpoint in AWS_ENDPOINT_URL.

usage: s3util.py mkbucket BUCKET
       s3util.py upload LOCAL_DIR s3://BUCKET/PREFIX
       s3util.py download s3://BUCKET/PREFIX LOCAL_DIR
       s3util.py put s3://BUCKET/KEY LOCAL_FILE
       s3util.py read-tables s3://BUCKET/PREFIX TABLE...   (pyarrow: rows per table, as JSON)
       s3util.py read-and-download s3://BUCKET/PREFIX LOCAL_DIR TABLE...   (both of the above)
       s3util.py with-page-checksums LOCAL_DIR OUT_DIR   (each Parquet file rewritten with page
                                                          CRCs, as Spark's writer does)
"""
import json
import os
import sys

import boto3


def client():
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def split(url):
    assert url.startswith("s3://"), url
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def main(cmd, *args):
    if cmd == "mkbucket":
        client().create_bucket(Bucket=args[0])
    elif cmd == "upload":
        local, url = args
        bucket, prefix = split(url)
        s3 = client()
        for root, _, files in os.walk(local):
            for f in files:
                path = os.path.join(root, f)
                key = "/".join(x for x in [prefix, os.path.relpath(path, local)] if x)
                s3.upload_file(path, bucket, key)
    elif cmd == "download":
        url, local = args
        bucket, prefix = split(url)
        s3 = client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) + 1:]
                path = os.path.join(local, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                s3.download_file(bucket, obj["Key"], path)
    elif cmd == "put":
        url, local = args
        bucket, key = split(url)
        client().upload_file(local, bucket, key)
    elif cmd == "with-page-checksums":
        import pyarrow.parquet as pq
        local, out = args
        for root, _, files in os.walk(local):
            for f in files:
                path = os.path.join(root, f)
                target = os.path.join(out, os.path.relpath(path, local))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                pq.write_table(pq.read_table(path), target, write_page_checksum=True)
    elif cmd == "read-and-download":
        url, local, *tables = args
        main("download", url, local)
        main("read-tables", url, *tables)
    elif cmd == "read-tables":
        import pyarrow.dataset as ds
        from pyarrow import fs

        endpoint = os.environ["AWS_ENDPOINT_URL"]
        s3 = fs.S3FileSystem(
            endpoint_override=endpoint.split("://", 1)[1],
            scheme="http",
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region=os.environ.get("AWS_REGION", "us-east-1"),
        )
        url, *tables = args
        bucket, prefix = split(url)
        rows = {}
        for table in tables:
            dataset = ds.dataset(f"{bucket}/{prefix}/{table}", filesystem=s3, format="parquet", partitioning="hive")
            rows[table] = dataset.to_table().num_rows
        print(json.dumps(rows))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(*sys.argv[1:])
