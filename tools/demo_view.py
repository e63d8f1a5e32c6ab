"""Formats the hub emulator's JSON for the demo: `alerts` (a stream from `hubctl follow`),
`field KEY` (a reported property from `hubctl twin show`) and `summary`."""
import json
import sys


def alerts():
    for line in sys.stdin:
        m = json.loads(line)
        try:
            t = json.loads(m["body"])["machine"]["temperature"]
        except (KeyError, ValueError, TypeError):
            t = "?"
        props = m.get("properties", {})
        print(f"  hub   | ALERT upstream from {m.get('from')}: machine.temperature={t} "
              f"MessageType={props.get('MessageType')} $.on={props.get('$.on')}", flush=True)


def field(key):
    value = json.load(sys.stdin)["reported"].get(key)
    print(json.dumps(value) if not isinstance(value, str) else value)


def summary():
    reported = json.load(sys.stdin)["reported"]
    s = reported.get("agentStats", {})
    print(f"  messages in      : {s.get('messagesReceived')}")
    print(f"  alerts out       : {s.get('alertsSent')} (accepted {s.get('alertsAccepted')})")
    print(f"  threshold changes: {s.get('thresholdChanges')} "
          f"(now {reported.get('TemperatureThreshold', {}).get('value')})")
    print(f"  reboot time      : {reported.get('rebootTime')}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "alerts":
        alerts()
    elif cmd == "field":
        field(sys.argv[2])
    else:
        summary()
