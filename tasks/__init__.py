"""I/O in bulk, one package per capability; programs, users, the calendar and status stay at the top."""
