"""The reconcilers of the gated phases: alliance invitation, drug-list collection, institution enrollment."""
