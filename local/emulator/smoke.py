#!/usr/bin/env python3
"""Checks a provisioned LocalStack against infra/template.yaml and the committed example events.

Run by local/emulator/smoke (which starts a private LocalStack, runs this, and stops it). Prints
one line per check and `N passed, N failed` (or writes the counts to --counts-file); exits 1 if
any check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
import traceback
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EVENTS = REPO / "local" / "events"
TABLES = ["lifestyle", "rx", "conditions", "labs", "tests"]
SQS_FIELDS = ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
              "eventSource", "eventSourceARN", "awsRegion"]

results: list[tuple[str, str | None]] = []


def check(name):
    def run(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok      {name}")
        except Exception as err:  # noqa: BLE001 - report every failure and go on
            detail = f"{type(err).__name__}: {err}" if str(err) else traceback.format_exc(limit=2)
            results.append((name, detail))
            print(f"FAILED  {name}: {detail}")
        return fn
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--counts-file", type=Path,
                        help="write 'passed failed' here instead of printing the summary line")
    args = parser.parse_args()
    resources = json.loads((args.state_dir / "resources.json").read_text())
    mappings = json.loads((args.state_dir / "mappings.json").read_text())
    endpoint = resources["endpoint"]
    bucket = resources["bucket"]
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name=resources["region"])
    config = Config(s3={"addressing_style": "path"})
    s3 = session.client("s3", endpoint_url=endpoint, config=config)
    sqs = session.client("sqs", endpoint_url=endpoint)
    queue = resources["queues"]

    def drain(url: str, wait: int = 1) -> list[dict]:
        """Receive and delete everything visible; returns the S3 event bodies (test events dropped)."""
        bodies = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                      AttributeNames=["All"]).get("Messages", [])
            if not got:
                return bodies
            for m in got:
                body = json.loads(m["Body"])
                if body.get("Event") != "s3:TestEvent":
                    bodies.append(body)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    @check("resources.json names the template's bucket and features queue")
    def _():
        assert bucket == "medrec-raw-000000000000", bucket
        assert resources["features_queue_url"] == queue["FeaturesQueue"], resources["features_queue_url"]
        assert resources["features_queue_url"].endswith("/000000000000/medrec-features")
        assert resources["region"] == "us-east-1"

    @check("mappings.json: one clean mapping per table, one vendor, one features, one export mapping")
    def _():
        assert len(mappings) == 8, len(mappings)
        (export,) = [m for m in mappings if m["function"] == "export"]
        assert export["queue_url"].endswith("/medrec-export"), export["queue_url"]
        assert export["dlq_url"].endswith("/medrec-export-dlq"), export["dlq_url"]
        assert export["batch_size"] == 1 and export["report_batch_item_failures"] is True
        (vendor,) = [m for m in mappings if m["function"] == "vendor"]
        assert vendor["queue_url"].endswith("/medrec-vendor"), vendor["queue_url"]
        assert vendor["dlq_url"].endswith("/medrec-vendor-dlq"), vendor["dlq_url"]
        assert vendor["report_batch_item_failures"] is True
        clean = [m for m in mappings if m["function"] == "clean"]
        assert sorted(m["environment"]["MEDREC_TABLE"] for m in clean) == sorted(TABLES)
        for m in clean:
            table = m["environment"]["MEDREC_TABLE"]
            assert m["queue_url"].endswith(f"/medrec-raw-{table}"), m["queue_url"]
            assert m["dlq_url"].endswith(f"/medrec-raw-{table}-dlq"), m["dlq_url"]
            assert m["batch_size"] == 1 and m["report_batch_item_failures"] is True
            assert m["environment"]["FEATURES_QUEUE_URL"] == resources["features_queue_url"]
        (features,) = [m for m in mappings if m["function"] == "features"]
        assert features["queue_url"] == resources["features_queue_url"]
        assert features["batch_size"] == 10 and features["maximum_batching_window_s"] == 5
        assert features["max_receive_count"] == 5 and features["report_batch_item_failures"] is True

    @check("every queue's visibility timeout is >= 6 x its function's timeout (+ batching window)")
    def _():
        for m in mappings:
            need = 6 * m["timeout_s"] + m["maximum_batching_window_s"]
            assert m["visibility_timeout_s"] >= need, (m["logical_id"], m["visibility_timeout_s"], need)

    @check("LocalStack queues carry the template's redrive policies and timeouts")
    def _():
        for m in mappings:
            attrs = sqs.get_queue_attributes(QueueUrl=m["queue_url"], AttributeNames=["All"])["Attributes"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=m["dlq_url"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            redrive = json.loads(attrs["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"] == dlq_arn, redrive
            assert int(redrive["maxReceiveCount"]) == m["max_receive_count"], redrive
            assert int(attrs["VisibilityTimeout"]) == m["visibility_timeout_s"], attrs

    for url in queue.values():
        drain(url, wait=0)  # the s3:TestEvent of provisioning

    key = "raw/rx/smoke test+1.csv"
    content = b"rx_id,person_id\n1,3585\n"

    @check("an upload to raw/rx/ arrives in raw-rx as an AWS S3 ObjectCreated:Put event")
    def _():
        s3.put_object(Bucket=bucket, Key=key, Body=content)
        bodies = drain(queue["RawRxQueue"], wait=3)
        assert len(bodies) == 1, bodies
        record = bodies[0]["Records"][0]
        assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put", record
        assert record["awsRegion"] == "us-east-1" and record["eventVersion"].startswith("2.")
        assert record["s3"]["bucket"]["name"] == bucket
        obj = record["s3"]["object"]
        assert " " not in obj["key"] and "+1" not in obj["key"], obj["key"]  # URL-encoded
        # Form decoding reads AWS's `+` for a space and LocalStack's `%20` alike.
        assert urllib.parse.unquote_plus(obj["key"]) == key, obj["key"]
        assert obj["size"] == len(content), obj
        assert obj["eTag"].strip('"') == hashlib.md5(content).hexdigest(), obj
        assert obj.get("versionId"), "the bucket is versioned, the event names the version"

    @check("prefix filters: raw/labs/ to raw-labs only, spines/ and full-exports/ to export, others nowhere")
    def _():
        s3.put_object(Bucket=bucket, Key="raw/labs/a.csv", Body=b"x\n")
        s3.put_object(Bucket=bucket, Key="incoming/a.csv", Body=b"x\n")
        s3.put_object(Bucket=bucket, Key="spines/a.csv", Body=b"x\n")
        s3.put_object(Bucket=bucket, Key="full-exports/b", Body=b"")
        s3.put_object(Bucket=bucket, Key="exports/c.json", Body=b"{}")
        time.sleep(1)
        seen = {lid: drain(url, wait=0) for lid, url in queue.items()}
        keys = lambda lid: sorted(b["Records"][0]["s3"]["object"]["key"] for b in seen[lid])
        assert keys("RawLabsQueue") == ["raw/labs/a.csv"], seen
        assert keys("ExportQueue") == ["full-exports/b", "spines/a.csv"], seen
        assert not any(v for lid, v in seen.items() if lid not in ("RawLabsQueue", "ExportQueue")), seen

    @check("a message received max_receive_count times without delete moves to the DLQ")
    def _():
        (labs,) = [m for m in mappings if m["environment"].get("MEDREC_TABLE") == "labs"]
        s3.put_object(Bucket=bucket, Key="raw/labs/poison.csv", Body=b"x\n")
        time.sleep(1)
        for _ in range(labs["max_receive_count"]):
            got = sqs.receive_message(QueueUrl=labs["queue_url"], WaitTimeSeconds=2,
                                      VisibilityTimeout=0).get("Messages", [])
            assert len(got) == 1, got
        assert not sqs.receive_message(QueueUrl=labs["queue_url"], WaitTimeSeconds=1).get("Messages")
        moved = sqs.receive_message(QueueUrl=labs["dlq_url"], WaitTimeSeconds=2).get("Messages", [])
        assert len(moved) == 1 and "poison.csv" in moved[0]["Body"], moved
        sqs.delete_message(QueueUrl=labs["dlq_url"], ReceiptHandle=moved[0]["ReceiptHandle"])

    @check("provisioning again is idempotent (no new notification, no new s3:TestEvent)")
    def _():
        out = subprocess.run([sys.executable, str(HERE / "provision.py"), "--endpoint", endpoint,
                              "--out-dir", str(args.state_dir)],
                             check=True, capture_output=True, text=True)
        assert "notification(s) written" not in out.stdout, out.stdout
        got = sqs.receive_message(QueueUrl=queue["RawRxQueue"], WaitTimeSeconds=1).get("Messages", [])
        assert not got, got
        assert json.loads((args.state_dir / "mappings.json").read_text()) == mappings

    def load(name: str) -> dict:
        return json.loads((EVENTS / name).read_text())

    @check("example SQS events have every SqsMessage field and a correct md5OfBody")
    def _():
        for name in ["clean-sqs.json", "clean-sqs-test-event.json", "features-sqs.json"]:
            for record in load(name)["Records"]:
                missing = [f for f in SQS_FIELDS if f not in record]
                assert not missing, (name, missing)
                assert "ApproximateReceiveCount" in record["attributes"], name
                assert record["eventSource"] == "aws:sqs" and record["messageAttributes"] == {}
                assert hashlib.md5(record["body"].encode()).hexdigest() == record["md5OfBody"], name

    @check("clean-sqs.json carries an S3 ObjectCreated event for raw/rx/ in medrec-raw-000000000000")
    def _():
        (record,) = load("clean-sqs.json")["Records"]
        assert record["eventSourceARN"].endswith(":medrec-raw-rx")
        s3_event = json.loads(record["body"])["Records"][0]
        assert s3_event["eventName"] == "ObjectCreated:Put"
        assert s3_event["s3"]["bucket"]["name"] == "medrec-raw-000000000000"
        assert s3_event["s3"]["object"]["key"] == "raw/rx/rx%2Bfile.csv"
        test = json.loads(load("clean-sqs-test-event.json")["Records"][0]["body"])
        assert test["Event"] == "s3:TestEvent" and "Records" not in test

    @check("features-sqs.json has two person_ids batches")
    def _():
        bodies = [json.loads(r["body"]) for r in load("features-sqs.json")["Records"]]
        assert bodies == [{"person_ids": [3585, 3613]}, {"person_ids": [3613, 3625]}], bodies

    @check("API examples are HTTP API v2 GET requests with the local API key")
    def _():
        for name, path, query in [("api-person.json", "/persons/3585", ""),
                                  ("api-features.json", "/persons/3585/features", "as_of=2034-12-31")]:
            ev = load(name)
            assert ev["version"] == "2.0" and ev["routeKey"] == "$default", name
            assert ev["rawPath"] == path and ev["rawQueryString"] == query, name
            assert ev["requestContext"]["http"]["method"] == "GET"
            assert ev["requestContext"]["http"]["path"] == path
            assert ev["headers"]["x-api-key"] == "local-dev-key"
            assert dict(urllib.parse.parse_qsl(query)) == ev.get("queryStringParameters", {}), name

    @check("migrate-create.json is a custom resource Create whose ResponseURL accepts the reply")
    def _():
        ev = load("migrate-create.json")
        for field in ["RequestType", "ResponseURL", "StackId", "RequestId", "ResourceType",
                      "LogicalResourceId", "ResourceProperties"]:
            assert field in ev, field
        assert ev["RequestType"] == "Create" and ev["ResourceType"] == "Custom::Migrations"
        assert "MigrationsVersion" in ev["ResourceProperties"]
        assert ev["ResourceProperties"]["ServiceToken"] == ev["ServiceToken"]
        # The example points at LocalStack on 4566; this instance may run on another port.
        url = urllib.parse.urlsplit(ev["ResponseURL"])._replace(netloc=urllib.parse.urlsplit(endpoint).netloc).geturl()
        reply = json.dumps({"Status": "SUCCESS", "PhysicalResourceId": "medrec-migrations",
                            "StackId": ev["StackId"], "RequestId": ev["RequestId"],
                            "LogicalResourceId": ev["LogicalResourceId"]}).encode()
        # CloudFormation's pre-signed URL wants an empty Content-Type; LocalStack takes it unsigned.
        request = urllib.request.Request(url, data=reply, method="PUT", headers={"Content-Type": ""})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, response.status
        key = urllib.parse.urlsplit(url).path.split("/", 2)[2]
        stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert json.loads(stored)["Status"] == "SUCCESS"

    passed = sum(1 for _, err in results if err is None)
    failed = len(results) - passed
    if args.counts_file:
        args.counts_file.write_text(f"{passed} {failed}\n")
    else:
        print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
