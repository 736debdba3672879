"""The analysts' web console: server-rendered pages over the state store and the event log (docs/console.md).

``console_routes`` mounts it in the gateway (``distillguard serve``); ``distillguard console`` serves it alone
against a data directory. Everything it shows is read from the store and ``events.db``; the only things it changes
are review decisions (through the case book, as the admin API does) and the watermark checks it records.
"""
