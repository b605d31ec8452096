"""The ground floor of I/O under tasks/: settings, engines and transactions, bulk writers, the database clock."""
