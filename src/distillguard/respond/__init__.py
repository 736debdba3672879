"""Response to detection: policy, enforcement, review, appeals and the audit trail."""
