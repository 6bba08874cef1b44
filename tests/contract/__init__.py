"""The connector contract test suite, shared by every connector's tests (see suite.py)."""
