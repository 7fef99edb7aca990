"""A stand-in for scx_loader on a private D-Bus bus, for tests/test_scx_loader_dbus.py.

scx_loader (sched-ext/scx, Rust) is not packaged for Debian 12 and cannot be built here, so the
test runs a real dbus-daemon and schedc's real busctl calls against this service, which owns
scx_loader's name and answers the two members of its interface that schedc uses
(`org.scx.Loader`: the `CurrentScheduler` property and `StopScheduler`), as scx_loader's
D-Bus interface documents them. Every call it gets is appended to a log, one line each.

    python scx_loader_standin.py BUS_ADDRESS CURRENT LOG STATE_FILE

StopScheduler writes "disabled" to STATE_FILE (the made-up /sys's sched_ext state: what the
kernel shows once scx_loader's scheduler has exited) and CurrentScheduler becomes "unknown".
"""

from __future__ import annotations

import sys
from pathlib import Path

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.scx.Loader"
IFACE = "org.scx.Loader"
PROPS = "org.freedesktop.DBus.Properties"


def main() -> int:
    address, current, log, state = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    conn = open_dbus_connection(bus=address)
    reply = conn.send_and_get_reply(message_bus.RequestName(NAME))
    if reply.body[0] != 1:  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
        return 1
    log.write_text("ready\n")
    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        fields = msg.header.fields
        iface, member = fields.get(HeaderFields.interface), fields.get(HeaderFields.member)
        with log.open("a") as f:
            f.write(f"{iface}.{member} {list(msg.body)}\n")
        if iface == PROPS and member == "Get" and tuple(msg.body) == (IFACE, "CurrentScheduler"):
            conn.send(new_method_return(msg, "v", (("s", current),)))
        elif iface == IFACE and member == "StopScheduler":
            current = "unknown"
            state.write_text("disabled\n")
            conn.send(new_method_return(msg))
        else:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod"))


if __name__ == "__main__":
    raise SystemExit(main())
