"""Trust: checking the audit trail's hash chains, and what a signed-in person may see (scope by role and district)."""
