"""The provincial platform: accounts, contracts, drug selections, its exported files, and the laggards."""
