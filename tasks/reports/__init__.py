"""Reports a bureau hands upward and publishes: coverage against the register, quarterly statistics."""
