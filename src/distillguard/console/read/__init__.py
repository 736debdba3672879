"""The console's read model: SQL over the state store and the event log, one module per page area."""
