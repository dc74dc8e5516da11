// The emulator throughput loop with Google's Node.js client, OpenTelemetry tracing on or off.
//
// Usage: node peer.js PROJECT ROUNDS MESSAGES on|off [roundtrip|publish|receive]
//
// Talks to the emulator named by PUBSUB_EMULATOR_HOST. Each round publishes MESSAGES
// structured CloudEvents to a fresh topic and receives and acks them all from its
// subscription; what is timed is the loop (roundtrip, the default), the publishing alone
// until every publish is confirmed (publish), or the receiving alone of messages published
// beforehand (receive). Prints the total seconds of all rounds, for
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

function receiveAll(subscription, messages) {
  let received = 0;
  return new Promise((resolve, reject) => {
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
}

function publishAll(topic, messages) {
  const attributes = { "content-type": "application/cloudevents+json; charset=UTF-8" };
  const published = [];
  for (let i = 0; i < messages; i++) {
    published.push(topic.publishMessage({ data: event(i), attributes }));
  }
  return Promise.all(published);
}

async function round(pubsub, messages, mode) {
  const name = `peer-${randomUUID().slice(0, 12)}`;
  const [topic] = await pubsub.createTopic(name);
  const [subscription] = await topic.createSubscription(name);
  const attach = () => pubsub.subscription(name, { flowControl: { maxMessages: 1000 } });
  let reader = null;
  if (mode === "receive") {
    await publishAll(topic, messages);
  }
  const started = process.hrtime.bigint();
  if (mode === "publish") {
    await publishAll(topic, messages);
  } else {
    reader = attach();
    const done = receiveAll(reader, messages);
    if (mode === "roundtrip") {
      await publishAll(topic, messages);
    }
    await done;
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  if (reader !== null) {
    await reader.close();
  }
  await subscription.delete();
  await topic.delete();
  return elapsed;
}

async function main() {
  const [project, rounds, messages, tracing, mode = "roundtrip"] = process.argv.slice(2);
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
    total += await round(pubsub, Number(messages), mode);
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
