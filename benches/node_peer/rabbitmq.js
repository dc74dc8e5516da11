// The RabbitMQ throughput loop with Node's amqplib: publishing with confirms, consuming with
// manual acks at a prefetch, on the broker the bench started.
//
// Usage: node rabbitmq.js URL ROUNDS MESSAGES roundtrip|publish|receive PREFETCH KIND
//
// KIND `same` publishes what this crate publishes by default: hyperfleet-broker's message
// (the structured event and its one header, `_watermill_message_uuid`), mandatory (an
// unroutable message is an error); `plain` neither the header nor mandatory, which costs the
// broker less; `header` the header alone (hyperfleet-broker's own publish), `mandatory` the
// flag alone: what each part costs the broker.
//
// Around each round's timed part it prints `start` and `end` and waits for a line on stdin,
// so that the bench can read the broker's CPU time over that part alone.
//
// Each round declares a fresh durable fanout exchange and a durable classic queue bound to it
// (hyperfleet-broker's topology), publishes MESSAGES persistent structured CloudEvents on a
// confirm channel (all in flight, then every confirm awaited) and consumes and acks them all;
// what is timed is the loop (roundtrip), the publishing alone until every confirm is in
// (publish), or the consuming alone of messages published beforehand (receive). Prints the
// total seconds of all rounds and the CPU seconds this process used in them, for
// benches/rabbitmq_throughput.rs.

const amqp = require("amqplib");
const { randomUUID } = require("node:crypto");
const readline = require("node:readline");

const replies = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// Tells the bench where a round's timed part starts or ends, and waits for it to look.
async function mark(name) {
  process.stdout.write(`${name}\n`);
  await replies.next();
}

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

async function publishAll(channel, exchange, messages, kind) {
  if (!["same", "plain", "header", "mandatory"].includes(kind)) {
    throw new Error(`unknown kind of message: ${kind}`);
  }
  const header = kind === "same" || kind === "header";
  const mandatory = kind === "same" || kind === "mandatory";
  const options = (i) => ({
    persistent: true,
    contentType: "application/cloudevents+json; charset=UTF-8",
    mandatory,
    ...(header ? { headers: { _watermill_message_uuid: `event-${i}` } } : {}),
  });
  for (let i = 0; i < messages; i++) {
    if (!channel.publish(exchange, "", event(i), options(i))) {
      await new Promise((resolve) => channel.once("drain", resolve));
    }
  }
  await channel.waitForConfirms();
}

function consumeAll(channel, queue, messages) {
  let received = 0;
  return new Promise((resolve, reject) => {
    channel
      .consume(queue, (message) => {
        JSON.parse(message.content);
        channel.ack(message);
        received += 1;
        if (received === messages) {
          resolve();
        }
      })
      .catch(reject);
  });
}

// CPU time of the timed parts of every round, this process's.
let cpuSeconds = 0;

async function round(connection, messages, mode, prefetch, kind) {
  const name = `peer-${randomUUID().slice(0, 12)}`;
  const publishing = await connection.createConfirmChannel();
  const consuming = await connection.createChannel();
  await consuming.prefetch(prefetch);
  await publishing.assertExchange(name, "fanout", { durable: true });
  await publishing.assertQueue(name, { durable: true });
  await publishing.bindQueue(name, name, "");
  if (mode === "receive") {
    await publishAll(publishing, name, messages, kind);
  }
  await mark("start");
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  if (mode === "publish") {
    await publishAll(publishing, name, messages, kind);
  } else {
    const done = consumeAll(consuming, name, messages);
    if (mode === "roundtrip") {
      await publishAll(publishing, name, messages, kind);
    }
    await done;
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  cpuSeconds += (cpu.user + cpu.system) / 1e6;
  await mark("end");
  await consuming.close();
  await publishing.deleteQueue(name);
  await publishing.deleteExchange(name);
  await publishing.close();
  return elapsed;
}

async function main() {
  const [url, rounds, messages, mode, prefetch, kind] = process.argv.slice(2);
  const connection = await amqp.connect(url);
  let total = 0;
  for (let r = 0; r < Number(rounds); r++) {
    total += await round(connection, Number(messages), mode, Number(prefetch), kind);
  }
  console.log(`${total.toFixed(6)} ${cpuSeconds.toFixed(6)}`);
  await connection.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
