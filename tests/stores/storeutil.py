"""Helpers for the object-store tests: put a corpus in a bucket, fetch what a job wrote, read
its tables as a third-party reader would (pyarrow). One pyarrow filesystem per scheme, pointed at
the emulator the environment names, as the job itself is:

- s3://  moto:     AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
- az://  Azurite:  AZURITE_BLOB_STORAGE_URL (account devstoreaccount1, its well-known key)
- gs://  gcp-storage-emulator: GOOGLE_BASE_URL (anonymous)

usage: storeutil.py mkbucket URL                     (s3://B, az://C or gs://B)
       storeutil.py upload LOCAL_DIR URL
       storeutil.py upload-with-directories LOCAL_DIR URL   (as pyarrow's copy_files does it:
                                                             with directory marker objects)
       storeutil.py download URL LOCAL_DIR
       storeutil.py put URL LOCAL_FILE
       storeutil.py read-tables URL TABLE...          (rows per table, as JSON)
       storeutil.py read-and-download URL LOCAL_DIR TABLE...   (both of the above)
       storeutil.py xml-create-twice gs://BUCKET/KEY   (two XML API puts with
                                                      x-goog-if-generation-match: 0; prints both
                                                      statuses: GCS answers 200 then 412)
       storeutil.py with-page-checksums LOCAL_DIR OUT_DIR   (each Parquet file rewritten with
                                                             page CRCs, as Spark's writer does)
"""
import json
import os
import sys

from pyarrow import fs

# Azurite's documented development account and key: public, not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def filesystem(url):
    """The pyarrow filesystem for URL's scheme, and the path in it (bucket/prefix)."""
    scheme, _, path = url.partition("://")
    path = path.strip("/")
    if scheme == "s3":
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        return fs.S3FileSystem(
            endpoint_override=endpoint.split("://", 1)[1],
            scheme="http",
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region=os.environ.get("AWS_REGION", "us-east-1"),
            allow_bucket_creation=True,
        ), path
    if scheme == "az":
        authority = os.environ["AZURITE_BLOB_STORAGE_URL"].split("://", 1)[1]
        return fs.AzureFileSystem(
            account_name=AZURITE_ACCOUNT,
            account_key=AZURITE_KEY,
            blob_storage_authority=authority,
            blob_storage_scheme="http",
            dfs_storage_authority=authority,
            dfs_storage_scheme="http",
        ), path
    if scheme == "gs":
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "test")
        return fs.GcsFileSystem(
            anonymous=True,
            scheme="http",
            endpoint_override=os.environ["GOOGLE_BASE_URL"].split("://", 1)[1],
        ), path
    sys.exit(f"unknown scheme in {url}")


def main(cmd, *args):
    if cmd == "mkbucket":
        f, bucket = filesystem(args[0])
        f.create_dir(bucket)
    elif cmd == "upload":
        local, url = args
        f, prefix = filesystem(url)
        # One object per file, no directory markers.
        for root, _, files in os.walk(local):
            for name in sorted(files):
                path = os.path.join(root, name)
                with open(path, "rb") as src, f.open_output_stream(f"{prefix}/{os.path.relpath(path, local)}") as dst:
                    dst.write(src.read())
    elif cmd == "upload-with-directories":
        local, url = args
        f, prefix = filesystem(url)
        fs.copy_files(local, prefix, destination_filesystem=f)
    elif cmd == "download":
        url, local = args
        f, prefix = filesystem(url)
        try:
            infos = f.get_file_info(fs.FileSelector(prefix, recursive=True))
        except FileNotFoundError:
            infos = []
        for info in infos:
            if info.type != fs.FileType.File:
                continue
            target = os.path.join(local, info.path[len(prefix) + 1:])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with f.open_input_stream(info.path) as src, open(target, "wb") as dst:
                dst.write(src.read())
    elif cmd == "put":
        url, local = args
        f, key = filesystem(url)
        with open(local, "rb") as src, f.open_output_stream(key) as dst:
            dst.write(src.read())
    elif cmd == "xml-create-twice":
        import http.client
        from urllib.parse import urlparse

        bucket, _, key = args[0][len("gs://"):].partition("/")
        base = urlparse(os.environ["GOOGLE_BASE_URL"])
        statuses = []
        for body in (b"first", b"second"):
            conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
            conn.request("PUT", f"/{bucket}/{key}", body=body, headers={"x-goog-if-generation-match": "0"})
            statuses.append(str(conn.getresponse().status))
            conn.close()
        print(" ".join(statuses))
    elif cmd == "with-page-checksums":
        import pyarrow.parquet as pq

        local, out = args
        for root, _, files in os.walk(local):
            for name in files:
                path = os.path.join(root, name)
                target = os.path.join(out, os.path.relpath(path, local))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                pq.write_table(pq.read_table(path), target, write_page_checksum=True)
    elif cmd == "read-and-download":
        url, local, *tables = args
        main("download", url, local)
        main("read-tables", url, *tables)
    elif cmd == "read-tables":
        import pyarrow.dataset as ds

        url, *tables = args
        f, prefix = filesystem(url)
        rows = {}
        for table in tables:
            dataset = ds.dataset(f"{prefix}/{table}", filesystem=f, format="parquet", partitioning="hive")
            rows[table] = dataset.to_table().num_rows
        print(json.dumps(rows))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(*sys.argv[1:])
