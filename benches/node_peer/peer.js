// The emulator throughput loop with Google's Node.js client, OpenTelemetry tracing on or off.
//
// Usage: node peer.js PROJECT ROUNDS MESSAGES on|off
//
// Talks to the emulator named by PUBSUB_EMULATOR_HOST. Each round publishes MESSAGES
// structured CloudEvents to a fresh topic and receives and acks them all from its
// subscription; only that loop is timed. Prints the total seconds of all rounds, for
// benches/pubsub_throughput.rs. With tracing on, spans go to a batch processor whose exporter
// drops them, as the Rust and Python sides do.

const { PubSub } = require("@google-cloud/pubsub");
const { trace } = require("@opentelemetry/api");
const { BasicTracerProvider, BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { randomUUID } = require("node:crypto");

const discard = {
  export(spans, done) {
    done({ code: 0 });
  },
  shutdown() {
    return Promise.resolve();
  },
};

function event(i) {
  return Buffer.from(JSON.stringify({
    specversion: "1.0",
    type: "com.redhat.hyperfleet.cluster.reconcile",
    source: "hyperfleet-sentinel",
    id: `event-${i}`,
    datacontenttype: "application/json",
    data: { id: `c${i}`, kind: "Cluster", href: "/clusters", generation: 1 },
  }));
}

async function roundTrip(pubsub, messages) {
  const name = `peer-${randomUUID().slice(0, 12)}`;
  const [topic] = await pubsub.createTopic(name);
  const [subscription] = await topic.createSubscription(name, {
    flowControl: { maxMessages: 1000 },
  });
  const started = process.hrtime.bigint();
  let received = 0;
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`received ${received} of ${messages}`)), 300000);
    subscription.on("message", (message) => {
      JSON.parse(message.data);
      message.ack();
      received += 1;
      if (received >= messages) {
        clearTimeout(timer);
        resolve();
      }
    });
    subscription.on("error", reject);
  });
  const attributes = { "content-type": "application/cloudevents+json; charset=UTF-8" };
  const published = [];
  for (let i = 0; i < messages; i++) {
    published.push(topic.publishMessage({ data: event(i), attributes }));
  }
  await Promise.all(published);
  await done;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await subscription.close();
  await subscription.delete();
  await topic.delete();
  return elapsed;
}

async function main() {
  const [project, rounds, messages, tracing] = process.argv.slice(2);
  const on = tracing === "on";
  if (on) {
    const provider = new BasicTracerProvider({
      spanProcessors: [new BatchSpanProcessor(discard)],
    });
    trace.setGlobalTracerProvider(provider);
  }
  const pubsub = new PubSub({ projectId: project, enableOpenTelemetryTracing: on });
  let total = 0;
  for (let r = 0; r < Number(rounds); r++) {
    total += await roundTrip(pubsub, Number(messages));
  }
  console.log(total.toFixed(6));
  await pubsub.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
