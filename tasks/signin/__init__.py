"""Web sign-in: password hashes (`passwords.py`) and the sign-in state every process shares (`state.py`)."""
