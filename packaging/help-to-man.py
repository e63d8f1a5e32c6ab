#!/usr/bin/python3
"""Turn `gateway-agent --help` into the man pages gateway-agent(8) and gateway-agent.conf(5).

The conf reference in --help is printed from the parser's key table, so the man pages cannot
drift from what the parser accepts. Usage:
    gateway-agent --help | help-to-man.py VERSION DATE OUTDIR
writes OUTDIR/gateway-agent.8 and OUTDIR/gateway-agent.conf.5 (uncompressed roff). Fails on help
text it does not recognise, so a format change breaks the package build instead of the pages.
"""
import re
import sys


def esc(text):
    """Roff-escape running text: backslashes, '-' so options stay ASCII hyphen-minus, and a
    break point after ';' so a connection-string example fits an 80-column terminal."""
    return text.replace("\\", "\\e").replace("-", "\\-").replace(";", ";\\:")


def line(text):
    """A text line that roff cannot take for a request (leading '.' or ')."""
    return "\\&" + text if text[:1] in (".", "'") else text


def parse(text):
    lines = text.splitlines()
    i = 0
    m = re.match(r"usage: (gateway-agent) (.*)$", lines[0])
    if not m:
        sys.exit("help-to-man: first line is not 'usage: gateway-agent ...'")
    synopsis = m.group(2)
    i = 1
    options = []  # [flag, [description lines]]
    exit_codes = None
    while i < len(lines) and not lines[i].startswith("Conf file:"):
        ln = lines[i]
        # "  --config PATH    text" or a command word: "  check            text".
        om = re.match(r"  (\S+(?: [A-Z]+)?)\s{2,}(.*)$", ln)
        if om:
            options.append([om.group(1), [om.group(2)]])
        elif ln.startswith("   ") and options and ln.strip():
            options[-1][1].append(ln.strip())
        elif ln.startswith("Exit codes:"):
            exit_codes = ln[len("Exit codes:"):].strip()
        i += 1
    if not options or exit_codes is None or i == len(lines):
        sys.exit("help-to-man: no options, exit codes or 'Conf file:' paragraph found")
    intro = []
    while i < len(lines) and lines[i].strip():
        intro.append(lines[i].strip())
        i += 1
    sections = []  # [name, [(key, default, annotations, help)]]
    while i < len(lines):
        ln = lines[i]
        sm = re.match(r"\[([a-z_]+)\]$", ln)
        km = re.match(r"  ([a-z_]+) = (\S*)\s*(.*)$", ln)
        if sm:
            sections.append([sm.group(1), []])
        elif km and sections:
            annotations = re.findall(r"\(([^)]*)\)", km.group(3))
            sections[-1][1].append([km.group(1), km.group(2), annotations, []])
        elif ln.startswith("      ") and sections and sections[-1][1]:
            sections[-1][1][-1][3].append(ln.strip())
        elif ln.strip():
            sys.exit("help-to-man: unrecognised line in the conf reference: %r" % ln)
        i += 1
    if not sections or not all(keys for _, keys in sections):
        sys.exit("help-to-man: conf reference has no keys")
    return synopsis, options, exit_codes, " ".join(intro), sections


MANUALS = {"5": "File Formats Manual", "8": "System Manager's Manual"}


def header(name, section, version, date, title):
    # Left-adjusted, no hyphenation: long connection-string examples cannot be justified.
    return [
        '.TH "%s" "%s" "%s" "gateway-agent %s" "%s"'
        % (name.upper(), section, date, version, MANUALS[section]),
        ".ad l",
        ".nh",
        ".SH NAME",
        "%s \\- %s" % (esc(name), esc(title)),
    ]


def entry_lines(entries):
    """.TP paragraphs for "--flag ARG" or command entries and their descriptions."""
    out = []
    for flag, desc in entries:
        parts = flag.split(" ", 1)
        arg = " \\fI%s\\fR" % esc(parts[1]) if len(parts) > 1 else ""
        out += [".TP", "\\fB%s\\fR%s" % (esc(parts[0]), arg), line(esc(" ".join(desc)))]
    return out


def page8(synopsis, options, exit_codes, version, date):
    out = header("gateway-agent", "8", version, date,
                 "edge filter and remote management agent for Azure IoT Hub")
    out += [".SH SYNOPSIS", ".B gateway\\-agent", esc(synopsis), ".SH DESCRIPTION"]
    out += [
        line(esc("gateway-agent reads sensor JSON (IoT Edge module input, a local MQTT broker, "
                 "UDP or a simulator), sends an alert to Azure IoT Hub or an IoT Edge gateway "
                 "over MQTT whenever a value is above a threshold, and answers the hub's twin "
                 "updates and direct methods.")),
        ".PP",
        line(esc("It is started by the systemd unit gateway-agent.service as the system user "
                 "gateway-agent. Alerts not yet delivered are kept in a bounded log in the "
                 "state directory.")),
    ]
    commands = [o for o in options if not o[0].startswith("-")]
    flags = [o for o in options if o[0].startswith("-")]
    for title, entries in (("COMMANDS", commands), ("OPTIONS", flags)):
        if entries:
            out.append(".SH " + title)
            out += entry_lines(entries)
    out += [".SH EXIT STATUS", line(esc(exit_codes))]
    out += [
        ".SH FILES",
        ".TP",
        "\\fI/etc/gateway\\-agent/gateway\\-agent.conf\\fR",
        "The configuration; see \\fBgateway\\-agent.conf\\fR(5).",
        ".TP",
        "\\fI/var/lib/gateway\\-agent\\fR",
        "State directory: alert log, stored twin state, reboot request.",
        ".SH SEE ALSO",
        "\\fBgateway\\-agent.conf\\fR(5), \\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1)",
    ]
    return out


def page5(intro, sections, version, date):
    out = header("gateway-agent.conf", "5", version, date, "configuration of gateway-agent")
    out += [".SH SYNOPSIS", "/etc/gateway\\-agent/gateway\\-agent.conf", ".SH DESCRIPTION"]
    out += [line(esc(intro))]
    out += [
        ".PP",
        line(esc("Unknown sections or keys, duplicate keys and bad values are errors naming "
                 "file:line. Check a file with gateway-agent --check-config --config FILE.")),
        line(esc("Each key below is shown with its default.")),
    ]
    for name, keys in sections:
        out.append(".SH [%s]" % esc(name))
        for key, default, annotations, helptext in keys:
            out.append(".TP")
            head = "\\fB%s\\fR = " % esc(key)
            head += "\\fI%s\\fR" % esc(default) if default else "(empty)"
            if annotations:
                head += " " + esc(" ".join("(%s)" % a for a in annotations))
            out.append(head)
            out.append(line(esc(" ".join(helptext))))
    out += [".SH SEE ALSO", "\\fBgateway\\-agent\\fR(8)"]
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: gateway-agent --help | help-to-man.py VERSION DATE OUTDIR")
    version, date, outdir = sys.argv[1:]
    synopsis, options, exit_codes, intro, sections = parse(sys.stdin.read())
    with open(outdir + "/gateway-agent.8", "w", encoding="utf-8") as f:
        f.write("\n".join(page8(synopsis, options, exit_codes, version, date)) + "\n")
    with open(outdir + "/gateway-agent.conf.5", "w", encoding="utf-8") as f:
        f.write("\n".join(page5(intro, sections, version, date)) + "\n")


if __name__ == "__main__":
    main()
