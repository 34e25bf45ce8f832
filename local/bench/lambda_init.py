#!/usr/bin/env python3
"""Each packaged function's size zipped and its init time: from the process's start to its first
request for an event (`GET /2018-06-01/runtime/invocation/next`) to a stand-in of the Lambda
runtime API on this machine, which never answers it. That span is what Lambda bills as Init for a
custom runtime: the binary loading, the configuration read, the AWS SDK and the pool built. Here
the database is a DATABASE_URL (in the cloud a Secrets Manager read adds one request) and the AWS
credentials come from the environment (no metadata lookup).

    python3 local/bench/lambda_init.py [target/lambda] [--runs 7] [--json FILE]
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

NEXT = "/2018-06-01/runtime/invocation/next"


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.asked = threading.Event()
        self.asked_at = 0.0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == NEXT and not self.server.asked.is_set():
            self.server.asked_at = time.perf_counter()
            self.server.asked.set()
        # Never answered: the function waits for an event until it is stopped.
        time.sleep(30)

    def log_message(self, *args):
        pass


def environment(function: str, api: str) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_LAMBDA_FUNCTION_NAME": f"medrec-{function}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/medrec-{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        "MEDREC_API_KEY": "bench-key",
        "MEDREC_TABLE": "labs",
        "FEATURES_QUEUE_URL": "http://127.0.0.1:1/000000000000/features",
        "RUST_LOG": "warn",
    }
    return env


def init_ms(bootstrap: Path, function: str) -> float:
    server = RuntimeApi()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"127.0.0.1:{server.server_address[1]}"
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(bootstrap)],
        env=environment(function, api),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not server.asked.wait(10):
            process.kill()
            error = process.stderr.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{function}: no request for an event within 10 s\n{error}")
        return (server.asked_at - started) * 1000
    finally:
        process.kill()
        process.wait()
        server.shutdown()
        server.server_close()


def zipped_bytes(bootstrap: Path) -> int:
    archive = bootstrap.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(bootstrap, "bootstrap")
    size = archive.stat().st_size
    archive.unlink()
    return size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default="target/lambda")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json")
    args = parser.parse_args()
    functions = sorted(p for p in Path(args.root).glob("*/bootstrap"))
    if not functions:
        sys.exit(f"no {args.root}/*/bootstrap: run `make package` first")
    results = {}
    for bootstrap in functions:
        name = bootstrap.parent.name
        times = [init_ms(bootstrap, name) for _ in range(args.runs)]
        results[name] = {
            "bytes": bootstrap.stat().st_size,
            "zipped_bytes": zipped_bytes(bootstrap),
            "init_ms_median": round(statistics.median(times), 1),
            "init_ms_max": round(max(times), 1),
            "runs": args.runs,
        }
        r = results[name]
        print(
            f"{name:10} {r['bytes'] / 1048576:5.1f} MB, zipped {r['zipped_bytes'] / 1048576:4.1f} MB"
            f" (target 8), init {r['init_ms_median']:5.1f} ms median,"
            f" {r['init_ms_max']:5.1f} max of {args.runs} (target 50)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
