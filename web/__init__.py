"""The web pages for program managers and reviewers (server-rendered, every asset served locally)."""
