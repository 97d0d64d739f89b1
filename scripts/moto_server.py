"""Starts moto server, the AWS API emulator the tests and `skyhook local` run against, with
its hot spots made cheap and its thread-safety holes closed. moto serves each request on a
thread of its own but keeps queues and tables in plain lists and dicts; AWS does neither of
the things those holes make it do (lose a message, fail a write with HTTP 500).

Cost (behaviour unchanged):

- SendMessage on a standard queue builds every queue attribute to read one FIFO setting,
  and three of those attributes walk every message in the queue: each send costs time in
  proportion to the queue's depth, so filling a queue costs its depth squared. On a
  standard queue the setting is never there, so the walk is skipped.
- ReceiveMessage checks each message's retention by building every queue attribute, which
  again walks the whole queue: a receive costs the queue's depth squared. The retention
  period is read from the queue directly instead.
- Every request lists moto's package folder on disk to match the host to a service; the
  list does not change while the server runs, so it is read once.
- A DynamoDB query of a table's own keys filters every item of the table on its partition
  key: each query costs the table's size, which a long run (the chaos run, the local bench)
  grows to tens of thousands of items. The partition is looked up instead.

- Each message's visibility is checked by building two datetimes, and every receive builds
  the list of all visible messages: the clock is read once per receive instead.
- DeleteMessage and ChangeMessageVisibility look for the receipt handle in every message
  of the queue; an index from handle to message finds it at once.

Safety:
- DeleteMessage rebuilt the message list without the queue's lock: a message sent while it
  did so was dropped, silently. A SendMessageBatch racing a delete lost all ten messages.
  Deletes, visibility changes and receives now hold the queue's lock.
- Two receives at once could hand the same message to both; AWS rarely does, moto did
  under every load. A receive on a standard queue picks and marks its messages under the
  queue's lock (long polls wait outside it).
- Parallel DynamoDB writes failed with HTTP 500 ("dictionary changed size during
  iteration"): DynamoDB and DynamoDB Streams requests run one at a time (the interpreter
  runs one thread at a time anyway, so this costs no throughput).

Arguments are moto_server's own (`-H 127.0.0.1 -p PORT`).
"""

import copy
import functools
import inspect
import sys
import threading
import time

from moto import backends
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.server import main
from moto.sqs import models as sqs
from moto.sqs.exceptions import ReceiptHandleIsInvalid

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


def _now_ms():
    return time.time() * 1000.0


def _available(message, now):
    # moto's Message.visible and not Message.delayed, with the clock read by the caller.
    return now > message.visible_at and now >= message.delayed_until


def _visible_messages(self):
    now = _now_ms()
    return [m for m in self._messages if _available(m, now)]


def _handles(queue):
    index = queue.__dict__.get("_skyhook_handles")
    if index is None:
        index = queue.__dict__.setdefault("_skyhook_handles", {})
    return index


def _find(queue, receipt_handle):
    message = _handles(queue).get(receipt_handle)
    if message is not None:
        return message
    # Received before the index knew it (a FIFO queue, moto's own Lambda poller).
    for m in queue._messages:
        if m.had_receipt_handle(receipt_handle):
            return m
    return None


def _forget(queue, message):
    index = _handles(queue)
    for handle in message.all_receipt_handles:
        index.pop(handle, None)


_receive_message = sqs.SQSBackend.receive_message


@functools.wraps(_receive_message)
def _receive(
    self,
    queue_name,
    count,
    wait_seconds_timeout,
    visibility_timeout,
    message_attribute_names=None,
):
    queue = self.get_queue(queue_name)
    if queue.fifo_queue:
        return _receive_message(
            self,
            queue_name,
            count,
            wait_seconds_timeout,
            visibility_timeout,
            message_attribute_names,
        )
    names = message_attribute_names or []
    retention_ms = int(queue.message_retention_period) * 1000
    deadline = time.time() + wait_seconds_timeout
    while True:
        result = []
        with queue._messages_lock:
            now = _now_ms()
            to_dlq = []
            for message in queue._messages:
                if not _available(message, now):
                    continue
                queue.pending_messages.discard(message)
                if message.sent_timestamp + retention_ms < now:
                    continue
                if (
                    queue.dead_letter_queue is not None
                    and queue.redrive_policy
                    and message.approximate_receive_count
                    >= queue.redrive_policy["maxReceiveCount"]
                ):
                    to_dlq.append(message)
                    continue
                queue.pending_messages.add(message)
                message.mark_received(visibility_timeout=visibility_timeout)
                _handles(queue)[message.receipt_handle] = message
                message_copy = copy.deepcopy(message)
                sqs._filter_message_attributes(message_copy, names)
                result.append(message_copy)
                if len(result) >= count:
                    break
            for message in to_dlq:
                queue._messages.remove(message)
                _forget(queue, message)
        for message in to_dlq:
            queue.dead_letter_queue.add_message(message)
        if result or not wait_seconds_timeout or time.time() > deadline:
            return result
        queue.wait_for_messages(1)


def _delete_message(self, receipt_handle):
    with self._messages_lock:
        if receipt_handle in self.deleted_messages:
            return
        message = _find(self, receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid()
        try:
            self._messages.remove(message)
        except ValueError:
            # Purged, or moved to the dead-letter queue, since it was received.
            _forget(self, message)
            raise ReceiptHandleIsInvalid()
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
        _forget(self, message)


_change_visibility = sqs.SQSBackend.change_message_visibility


@functools.wraps(_change_visibility)
def _change_message_visibility(self, queue_name, receipt_handle, visibility_timeout):
    queue = self.get_queue(queue_name)
    with queue._messages_lock:
        message = _handles(queue).get(receipt_handle)
        if message is not None and message not in queue._messages:
            message = None
        if message is None:
            return _change_visibility(self, queue_name, receipt_handle, visibility_timeout)
        if (
            _now_ms() + int(visibility_timeout) * 1000 - message.sent_timestamp
            > 43200 * 1000
        ):
            # moto's own check and error for a total visibility beyond 12 hours.
            return _change_visibility(self, queue_name, receipt_handle, visibility_timeout)
        message.change_visibility(visibility_timeout)
        if _available(message, _now_ms()):
            queue.pending_messages.discard(message)
        queue._messages_lock.notify_all()


_dynamodb_lock = threading.RLock()

_table_query = Table.query


def _query_one_partition(self, *args, **kwargs):
    # moto reads a partition by filtering every item of the table on its hash key, so a
    # query costs the table's size. A base-table query of a table with a sort key now
    # looks its partition up instead; the rest of the query is moto's own. Safe because
    # DynamoDB requests run one at a time (below).
    bound = inspect.signature(_table_query).bind(self, *args, **kwargs)
    hash_key = bound.arguments.get("hash_key")
    if bound.arguments.get("index_name") or hash_key is None or not self.range_key_attr:
        return _table_query(self, *args, **kwargs)
    partition = self.items.get(hash_key, {})
    self.all_items = lambda: sorted(partition.values(), key=lambda item: item.range_key)
    try:
        return _table_query(self, *args, **kwargs)
    finally:
        del self.all_items


def _one_at_a_time(call_action):
    @functools.wraps(call_action)
    def locked(self):
        with _dynamodb_lock:
            return call_action(self)

    return locked


_modules = tuple(backends.list_of_moto_modules())

sqs.Queue.attributes = property(_queue_attributes)
sqs.SQSBackend.send_message = _send
sqs.SQSBackend.is_message_valid_based_on_retention_period = _within_retention
backends.list_of_moto_modules = lambda: _modules
sqs.Queue.messages = property(_visible_messages)
sqs.Queue.delete_message = _delete_message
sqs.SQSBackend.receive_message = _receive
sqs.SQSBackend.change_message_visibility = _change_message_visibility
Table.query = _query_one_partition
DynamoHandler.call_action = _one_at_a_time(DynamoHandler.call_action)
DynamoDBStreamsHandler.call_action = _one_at_a_time(DynamoDBStreamsHandler.call_action)

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
