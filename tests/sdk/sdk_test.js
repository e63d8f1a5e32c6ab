// Drives the hub emulator with the official, unmodified Azure IoT Node.js SDK
// (azure-iot-device + azure-iot-device-mqtt) over TLS to the emulator's CA.
// Usage: node sdk_test.js <emulator dir>   (the emulator must be running)
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync, execFile } = require('child_process');
const {
  Client, ModuleClient, Message, SharedAccessSignatureAuthenticationProvider,
} = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const dir = path.resolve(process.argv[2]);
const tools = path.resolve(__dirname, '..', '..', 'tools', 'hub-emulator');
const python = process.env.PYTHON || 'python3';
const port = fs.readFileSync(path.join(dir, 'port'), 'utf8').trim();
const ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
const otherCa = fs.readFileSync(path.join(dir, 'other-ca.pem'), 'utf8');
const gateway = `localhost:${port}`;

let passed = 0;
let failed = 0;

function tool(name, ...args) {
  return execFileSync(python, [path.join(tools, name), ...args], { encoding: 'utf8', timeout: 60000 });
}
function hubctl(...args) {
  return tool('hubctl', '--dir', dir, ...args);
}
function hubctlAsync(...args) {
  return new Promise((resolve, reject) => {
    execFile(python, [path.join(tools, 'hubctl'), '--dir', dir, ...args], { encoding: 'utf8', timeout: 60000 },
      (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)));
  });
}
function connstr(id) {
  return tool('hubemu', 'connstr', '--dir', dir, id, '--gateway', gateway).trim();
}
function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg);
}
function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); }),
  ]);
}
async function step(name, fn) {
  try {
    await withTimeout(Promise.resolve().then(fn), 60000, name);
    passed++;
    console.log(`PASS ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
async function openClient(client, caText) {
  await client.setOptions({ ca: caText || ca });
  await client.open();
  return client;
}
async function expectOpenFails(client, caText, check) {
  client.on('error', () => {});
  try {
    await openClient(client, caText);
  } catch (e) {
    if (check) check(e);
    return e;
  } finally {
    try { await client.close(); } catch (_) { /* ignore */ }
  }
  throw new Error('open() succeeded but should have failed');
}

async function main() {
  const filter = ModuleClient.fromConnectionString(connstr('edgedev/filter'), Mqtt);
  const temp = ModuleClient.fromConnectionString(connstr('edgedev/tempSensor'), Mqtt);
  const device = Client.fromConnectionString(connstr('edgedev'), Mqtt);
  const received = [];
  let twin;

  await step('module client connects over TLS with SAS', async () => {
    filter.on('inputMessage', (inputName, msg) => {
      received.push({ inputName, msg });
      filter.complete(msg, () => {});
    });
    await openClient(filter);
  });

  await step('module twin get, reported patch, desired patch', async () => {
    twin = await filter.getTwin();
    assert(typeof twin.properties.desired.$version === 'number', 'desired $version');
    await new Promise((resolve, reject) => twin.properties.reported.update({ sdk: 'node', n: 1 },
      (err) => (err ? reject(err) : resolve())));
    const shown = JSON.parse(hubctl('twin', 'show', 'edgedev/filter'));
    assert(shown.reported.sdk === 'node' && shown.reported.n === 1, JSON.stringify(shown));
    const gotDesired = new Promise((resolve) => {
      twin.on('properties.desired', (delta) => {
        if (delta.TemperatureThreshold === 31) resolve(delta);
      });
    });
    // The SDK subscribes to desired patches asynchronously after getTwin(); like the real hub,
    // the emulator pushes a patch only to a subscribed client, so retry until it was pushed.
    for (let i = 0; i < 50; i++) {
      const r = JSON.parse(hubctl('twin', 'set-desired', 'edgedev/filter', '{"TemperatureThreshold":31}'));
      if (r.pushed) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    const delta = await withTimeout(gotDesired, 10000, 'desired patch');
    assert(delta.$version >= 2, JSON.stringify(delta));
  });

  await step('direct method round trip', async () => {
    filter.onMethod('rebootDevice', (req, res) => {
      res.send(200, { echoed: req.payload }, () => {});
    });
    await new Promise((r) => setTimeout(r, 500)); // the SDK subscribes to methods lazily
    const r = JSON.parse(await hubctlAsync('method', 'edgedev/filter', 'rebootDevice', '{"delay":1}',
      '--timeout', '10'));
    assert(r.status === 200 && r.payload.echoed.delay === 1, JSON.stringify(r));
  });

  await step('sendOutputEvent is routed into another module input1 with properties', async () => {
    await openClient(temp);
    const m = new Message(JSON.stringify({ machine: { temperature: 26.5, pressure: 1.4 } }));
    m.properties.add('sequenceNumber', '7');
    m.properties.add('batchId', 'b-1');
    m.contentType = 'application/json';
    m.contentEncoding = 'utf-8';
    await temp.sendOutputEvent('temperatureOutput', m);
    const deadline = Date.now() + 10000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert(received.length === 1, 'input message not received');
    const { inputName, msg } = received[0];
    assert(inputName === 'input1', inputName);
    assert(msg.properties.getValue('sequenceNumber') === '7', 'sequenceNumber');
    assert(msg.properties.getValue('batchId') === 'b-1', 'batchId');
    assert(msg.contentType === 'application/json', 'contentType ' + msg.contentType);
    assert(JSON.parse(msg.getData().toString()).machine.temperature === 26.5, 'body');
  });

  await step('module output to $upstream is recorded with properties', async () => {
    const before = hubctl('messages').split('\n').filter(Boolean).length;
    const alert = new Message('{"machine":{"temperature":26.5}}');
    alert.properties.add('MessageType', 'Alert');
    await filter.sendOutputEvent('output1', alert);
    const lines = hubctl('messages', '--wait-count', String(before + 1), '--timeout', '10')
      .split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const rec = lines[lines.length - 1];
    assert(rec.from === 'edgedev/filter', rec.from);
    assert(rec.properties.MessageType === 'Alert' && rec.properties['$.on'] === 'output1',
      JSON.stringify(rec.properties));
  });

  await step('device client: telemetry recorded, twin works', async () => {
    await openClient(device);
    const before = hubctl('messages').split('\n').filter(Boolean).length;
    const m = new Message('{"hello":"hub"}');
    m.properties.add('kind', 'device');
    await device.sendEvent(m);
    const lines = hubctl('messages', '--wait-count', String(before + 1), '--timeout', '10')
      .split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const rec = lines[lines.length - 1];
    assert(rec.from === 'edgedev' && rec.body === '{"hello":"hub"}' && rec.properties.kind === 'device',
      JSON.stringify(rec));
    const t = await device.getTwin();
    assert(t.properties.reported.$version >= 1, 'device twin');
  });

  await step('wrong key is refused', async () => {
    const bad = connstr('leaf1').replace(/SharedAccessKey=.*$/, 'SharedAccessKey=' +
      Buffer.alloc(32, 7).toString('base64'));
    await expectOpenFails(Client.fromConnectionString(bad, Mqtt), ca, (e) => {
      assert(/Unauthorized|not authorized|Not authorized/i.test(String(e && (e.name + e.message))),
        'expected an auth error, got ' + e);
    });
  });

  await step('expired token is refused', async () => {
    const cs = connstr('leaf1');
    const key = /SharedAccessKey=(.*)$/.exec(cs)[1];
    const host = /HostName=([^;]*)/.exec(cs)[1];
    const sas = tool('hubemu', 'sas', '--dir', dir, 'leaf1', '--expiry', String(Math.floor(Date.now() / 1000) - 3600)).trim();
    assert(key && sas.startsWith('SharedAccessSignature '), 'sas');
    const provider = new SharedAccessSignatureAuthenticationProvider({
      host, deviceId: 'leaf1', sharedAccessSignature: sas, gatewayHostName: gateway,
    });
    await expectOpenFails(Client.fromAuthenticationProvider(provider, Mqtt), ca, (e) => {
      assert(/Unauthorized|not authorized/i.test(String(e && (e.name + e.message))),
        'expected an auth error, got ' + e);
    });
  });

  await step('a client trusting another CA fails the TLS handshake', async () => {
    await expectOpenFails(Client.fromConnectionString(connstr('leaf1'), Mqtt), otherCa, (e) => {
      const text = String(e && (e.message + ' ' + (e.transportError ? e.transportError.message : '')));
      assert(/certificate/i.test(text), 'expected a TLS verification error, got ' + e);
    });
  });

  for (const c of [filter, temp, device]) {
    try { await c.close(); } catch (_) { /* ignore */ }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
