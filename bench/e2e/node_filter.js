// The IoT Edge "filter module" tutorial logic on the official Azure IoT Node.js SDK
// (azure-iot-device + azure-iot-device-mqtt, unmodified), for bench_e2e.py.
//
// Usage: node node_filter.js <module connection string> <CA file> [threshold]
// The SDK is found through NODE_PATH (bench_e2e.py points it at an `npm ci` of tests/sdk).
//
// Per input message: complete it, parse the body as JSON, and when machine.temperature is above
// the threshold send the original text to output1 with the property MessageType=Alert. The
// tutorial also logs every alert to the console; that is left out here (the agent does not log
// per message either). Content type and encoding are set so the upstream messages carry the same
// system properties as the agent's alerts.
// Prints "ready" on stdout once the client is open; exits 0 on SIGTERM after closing the client.
'use strict';

const fs = require('fs');
const { ModuleClient, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const [connStr, caFile, thresholdArg] = process.argv.slice(2);
if (!connStr || !caFile) {
  process.stderr.write('usage: node node_filter.js <connection string> <CA file> [threshold]\n');
  process.exit(2);
}
const threshold = thresholdArg === undefined ? 25 : Number(thresholdArg);
const counters = { received: 0, alerts: 0, sendErrors: 0, parseErrors: 0 };

function onInput(client, inputName, msg) {
  client.complete(msg, () => {});
  if (inputName !== 'input1') return;
  counters.received++;
  const text = msg.getBytes().toString('utf8');
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    counters.parseErrors++;
    return;
  }
  const machine = body && body.machine;
  if (machine && typeof machine.temperature === 'number' && machine.temperature > threshold) {
    const out = new Message(text);
    out.properties.add('MessageType', 'Alert');
    out.contentType = 'application/json';
    out.contentEncoding = 'utf-8';
    counters.alerts++;
    client.sendOutputEvent('output1', out, (err) => {
      if (err) counters.sendErrors++;
    });
  }
}

async function main() {
  const client = ModuleClient.fromConnectionString(connStr, Mqtt);
  client.on('error', (err) => process.stderr.write(`client error: ${err && err.message}\n`));
  await client.setOptions({ ca: fs.readFileSync(caFile, 'utf8') });
  await client.open();
  client.on('inputMessage', (inputName, msg) => onInput(client, inputName, msg));
  process.stdout.write('ready\n');

  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    process.stderr.write(`node_filter: ${JSON.stringify(counters)}\n`);
    const force = setTimeout(() => process.exit(0), 5000);
    client.close().catch(() => {}).finally(() => {
      clearTimeout(force);
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`node_filter: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
