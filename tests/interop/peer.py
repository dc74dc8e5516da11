"""Real peers on the Pub/Sub wire, for the interop tests (tests/interop_pubsub.rs).

Each command talks to the emulator named by PUBSUB_EMULATOR_HOST and prints one JSON line
per message on stdout for the Rust test to check.

  publish-broker      PROJECT TOPIC TRACEPARENT   hyperfleet-broker's wire format
  publish-sdkgo       PROJECT TOPIC TRACEPARENT   CloudEvents sdk-go binary mode
  publish-googclient  PROJECT TOPIC               google-cloud-pubsub with OpenTelemetry on
  receive             PROJECT SUBSCRIPTION COUNT  parse with the CloudEvents Python SDK
  rabbit-publish-broker  URL EXCHANGE TRACEPARENT  hyperfleet-broker's RabbitMQ wire (pika)
  rabbit-receive         URL QUEUE COUNT           read as hyperfleet-broker reads (pika)

The rabbit-* commands talk to the RabbitMQ node at URL instead.
"""

import json
import sys

from google.cloud import pubsub_v1

EVENT = {
    "specversion": "1.0",
    "type": "com.redhat.hyperfleet.cluster.reconcile.v1",
    "source": "/hyperfleet/service/sentinel",
    "id": "00000000-0000-0000-0000-000000000000",
    "time": "2025-10-23T12:00:00Z",
    "datacontenttype": "application/json",
    "data": {
        "id": "11111111-1111-1111-1111-111111111111",
        "kind": "Cluster",
        "href": "https://api.hyperfleet.com/v1/clusters/11111111-1111-1111-1111-111111111111",
        "generation": 5,
    },
}


def publish(project, topic, data, attributes, client=None):
    client = client or pubsub_v1.PublisherClient()
    message_id = client.publish(client.topic_path(project, topic), data, **attributes).result(timeout=60)
    return message_id


def publish_broker(project, topic, traceparent):
    event = dict(EVENT, traceparent=traceparent)
    message_id = publish(
        project, topic, json.dumps(event).encode(), {"_watermill_message_uuid": event["id"]}
    )
    print(json.dumps({"message_id": message_id}))


def publish_sdkgo(project, topic, traceparent):
    attributes = {
        "ce-specversion": "1.0",
        "ce-id": EVENT["id"],
        "ce-source": EVENT["source"],
        "ce-type": EVENT["type"],
        "ce-time": EVENT["time"],
        "ce-traceparent": traceparent,
        "Content-Type": "application/json",
    }
    message_id = publish(project, topic, json.dumps(EVENT["data"]).encode(), attributes)
    print(json.dumps({"message_id": message_id}))


def publish_googclient(project, topic):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    client = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_open_telemetry_tracing=True)
    )
    # A structured CloudEvent with no traceparent extension of its own.
    message_id = publish(
        project,
        topic,
        json.dumps(EVENT).encode(),
        {"content-type": "application/cloudevents+json; charset=UTF-8"},
        client,
    )
    provider.force_flush()
    spans = [
        {
            "name": s.name,
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
        }
        for s in exporter.get_finished_spans()
    ]
    print(json.dumps({"message_id": message_id, "spans": spans}))


def receive(project, subscription, count):
    # The CloudEvents Python SDK 2.x keeps its established API under cloudevents.v1.
    from cloudevents.v1.http import from_http, from_json

    client = pubsub_v1.SubscriberClient()
    path = client.subscription_path(project, subscription)
    seen = 0
    while seen < count:
        response = client.pull(request={"subscription": path, "max_messages": count}, timeout=60)
        for received in response.received_messages:
            message = received.message
            attributes = dict(message.attributes)
            content_type = next(
                (v for k, v in attributes.items() if k.lower() == "content-type"), ""
            )
            if content_type.startswith("application/cloudevents"):
                event = from_json(message.data)
                encoding = "structured"
            else:
                event = from_http(attributes, message.data)
                encoding = "binary"
            print(
                json.dumps(
                    {
                        "encoding": encoding,
                        "id": event["id"],
                        "type": event["type"],
                        "traceparent": event.get("traceparent"),
                        "data": event.data if not isinstance(event.data, bytes) else json.loads(event.data),
                    }
                ),
                flush=True,
            )
            seen += 1
        if response.received_messages:
            client.acknowledge(
                request={
                    "subscription": path,
                    "ack_ids": [r.ack_id for r in response.received_messages],
                }
            )


def rabbit_publish_broker(url, exchange, traceparent):
    import pika

    event = dict(EVENT, traceparent=traceparent)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    # What watermill-amqp sends: the JSON body, persistent, one string header, no content type.
    channel.basic_publish(
        exchange=exchange,
        routing_key="",
        body=json.dumps(event).encode(),
        properties=pika.BasicProperties(
            delivery_mode=2, headers={"_watermill_message_uuid": event["id"]}
        ),
    )
    connection.close()
    print(json.dumps({"id": event["id"]}))


def rabbit_receive(url, queue, count):
    import pika
    from cloudevents.v1.http import from_json

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    seen = 0
    for method, properties, body in channel.consume(queue, inactivity_timeout=60):
        if method is None:
            sys.exit(f"only {seen} of {count} messages arrived")
        headers = properties.headers or {}
        event = from_json(body)
        print(
            json.dumps(
                {
                    "id": event["id"],
                    "traceparent": event.get("traceparent"),
                    "headers": {k: [type(v).__name__, v if isinstance(v, str) else repr(v)] for k, v in headers.items()},
                    "delivery_mode": properties.delivery_mode,
                }
            ),
            flush=True,
        )
        channel.basic_ack(method.delivery_tag)
        seen += 1
        if seen >= count:
            break
    connection.close()


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "publish-broker":
        publish_broker(*args)
    elif command == "publish-sdkgo":
        publish_sdkgo(*args)
    elif command == "publish-googclient":
        publish_googclient(*args)
    elif command == "receive":
        receive(args[0], args[1], int(args[2]))
    elif command == "rabbit-publish-broker":
        rabbit_publish_broker(*args)
    elif command == "rabbit-receive":
        rabbit_receive(args[0], args[1], int(args[2]))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
