"""The emulator throughput loop with Google's Python client, OpenTelemetry tracing on or off.

Usage: pubsub_peer.py PROJECT ROUNDS MESSAGES on|off [roundtrip|publish|receive]

Talks to the emulator named by PUBSUB_EMULATOR_HOST. Each round publishes MESSAGES structured
CloudEvents to a fresh topic and receives and acks them all from its subscription; what is
timed is the loop (roundtrip, the default), the publishing alone until every publish is
confirmed (publish), or the receiving alone of messages published beforehand (receive). Prints the total seconds of all rounds, for benches/pubsub_throughput.rs.
With tracing on, spans go to a batch processor whose exporter drops them, as the Rust side does.
"""

import json
import sys
import threading
import time
import uuid

from google.cloud import pubsub_v1
from google.cloud.pubsub_v1 import types
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Discard(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


def event(i):
    return json.dumps({
        "specversion": "1.0",
        "type": "com.redhat.hyperfleet.cluster.reconcile",
        "source": "hyperfleet-sentinel",
        "id": f"event-{i}",
        "datacontenttype": "application/json",
        "data": {"id": f"c{i}", "kind": "Cluster", "href": "/clusters", "generation": 1},
    }).encode()


def publish_all(publisher, topic, messages):
    attributes = {"content-type": "application/cloudevents+json; charset=UTF-8"}
    published = [publisher.publish(topic, event(i), **attributes) for i in range(messages)]
    for p in published:
        p.result(timeout=120)


def one_round(project, messages, tracing, mode):
    publisher = pubsub_v1.PublisherClient(
        publisher_options=types.PublisherOptions(enable_open_telemetry_tracing=tracing))
    subscriber = pubsub_v1.SubscriberClient(
        subscriber_options=types.SubscriberOptions(enable_open_telemetry_tracing=tracing))
    name = f"peer-{uuid.uuid4().hex[:12]}"
    topic = publisher.topic_path(project, name)
    subscription = subscriber.subscription_path(project, name)
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)

    received = 0
    done = threading.Event()
    lock = threading.Lock()

    def callback(message):
        nonlocal received
        json.loads(message.data)
        message.ack()
        with lock:
            received += 1
            if received >= messages:
                done.set()

    flow = types.FlowControl(max_messages=1000)
    if mode == "receive":
        publish_all(publisher, topic, messages)
    future = None
    started = time.perf_counter()
    if mode != "publish":
        future = subscriber.subscribe(subscription, callback, flow_control=flow)
    if mode != "receive":
        publish_all(publisher, topic, messages)
    if future is not None and not done.wait(timeout=300):
        raise SystemExit(f"received {received} of {messages}")
    elapsed = time.perf_counter() - started
    if future is not None:
        future.cancel()
        future.result()
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=topic)
    return elapsed


def main():
    project, rounds, messages, tracing = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "on"
    mode = sys.argv[5] if len(sys.argv) > 5 else "roundtrip"
    if tracing:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Discard()))
        trace.set_tracer_provider(provider)
    total = sum(one_round(project, messages, tracing, mode) for _ in range(rounds))
    print(f"{total:.6f}")


if __name__ == "__main__":
    main()
