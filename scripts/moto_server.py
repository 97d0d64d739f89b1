"""Starts moto server, the AWS API emulator the tests and `skyhook local` run against, with
two of its hot spots made cheap. Behaviour is unchanged; only the cost of a request is.

- SendMessage on a standard queue builds every queue attribute to read one FIFO setting,
  and three of those attributes walk every message in the queue: each send costs time in
  proportion to the queue's depth, so filling a queue costs its depth squared. On a
  standard queue the setting is never there, so the walk is skipped.
- ReceiveMessage checks each message's retention by building every queue attribute, which
  again walks the whole queue: a receive costs the queue's depth squared. The retention
  period is read from the queue directly instead.
- Every request lists moto's package folder on disk to match the host to a service; the
  list does not change while the server runs, so it is read once.

Arguments are moto_server's own (`-H 127.0.0.1 -p PORT`).
"""

import functools
import sys
import threading

from moto import backends
from moto.server import main
from moto.sqs import models as sqs

_sending = threading.local()
_attributes = sqs.Queue.attributes


def _queue_attributes(self):
    if getattr(_sending, "active", False) and not self.fifo_queue:
        # What send_message looks up (ContentBasedDeduplication) exists on FIFO queues only.
        return {}
    return _attributes.fget(self)


_send_message = sqs.SQSBackend.send_message


@functools.wraps(_send_message)
def _send(self, *args, **kwargs):
    _sending.active = True
    try:
        return _send_message(self, *args, **kwargs)
    finally:
        _sending.active = False


def _within_retention(self, queue_name, message):
    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > sqs.unix_time()


_modules = tuple(backends.list_of_moto_modules())

sqs.Queue.attributes = property(_queue_attributes)
sqs.SQSBackend.send_message = _send
sqs.SQSBackend.is_message_valid_based_on_retention_period = _within_retention
backends.list_of_moto_modules = lambda: _modules

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
