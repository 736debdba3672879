"""Detection: per-request signals, account features, risk scoring."""
