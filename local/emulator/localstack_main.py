"""LocalStack's runtime (`python -m localstack.runtime.main`), as local/emulator/localstack starts it.

Two differences, both about leaving nothing behind:

- S3's object store lives under LOCALSTACK_S3_STORAGE (the state directory, removed by
  `make local-down`) instead of the hard-coded /tmp/localstack-s3-storage.
- A SIGTERM is acted on at once. LocalStack handles it with `signal.signal`, and Python runs such a
  handler on the main thread, which sits in the event loop's select() and only notices when the
  loop next wakes (seconds later when the signal went to another thread). Registering the
  signals with the loop first sets a wakeup fd that wakes it; LocalStack's handler then runs.
- After LocalStack's own orderly shutdown (SIGTERM; its shutdown hooks run and it logs
  "Completed, bye!"), the process exits at once. Without this it never exits by itself when a
  client that was long-polling SQS (the event source mapping poller, `receive-message
  --wait-time-seconds`) has gone: shutdown wakes the pending ReceiveMessage handlers, whose
  gateway threads then wait forever to hand their responses to the event loop that has already
  stopped, and the interpreter waits for those threads at exit (a SIGKILL after the stop timeout
  was the only way out).
"""

import asyncio
import os
import signal
import sys
import traceback


def main() -> None:
    storage = os.environ.get("LOCALSTACK_S3_STORAGE")
    if storage:
        os.makedirs(storage, exist_ok=True)
        # The provider reads the module default when it is instantiated (at the first S3 call).
        from localstack.services.s3 import provider

        provider.DEFAULT_S3_TMP_DIR = storage

    # The loop LocalStack's runtime server picks up with asyncio.get_event_loop().
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: None)

    from localstack.runtime.main import main as localstack_main

    code = 0
    try:
        localstack_main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 (reported, then the same prompt exit)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
